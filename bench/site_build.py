"""Catalog build benchmark: build a site of N generated template-format pages (default 500),
then change one page and time the incremental rebuild that ``hubcore site serve`` does.

    python bench/site_build.py [--pages 500]

Prints the full build time and the one-page rebuild time (targets: < 10 s and < 1 s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hubcore.site import SiteBuilder, SiteConfig

TAGS = ("vision", "nlp", "generative", "audio", "scriptable")


def write_page(folder: Path, number: int, extra: str = "") -> Path:
    """One page of the PyTorch hub's format, with a table, a snippet and some prose."""
    tag = TAGS[number % len(TAGS)]
    path = folder / f"acme_zoo_model{number:04d}.md"
    path.write_text(
        f"""---
layout: hub_detail
background-class: hub-background
body-class: hub
category: researchers
title: Model {number}{extra}
summary: Model number {number} of the generated zoo, for the {tag} tag.
image: no-image
author: Acme
tags: [{tag}]
github-link: https://github.com/acme/zoo
github-id: acme/zoo
featured_image_1: no-image
featured_image_2: no-image
accelerator: cuda-optional
order: {number}
---

```python
import torch
model = torch.hub.load('acme/zoo', 'model{number}', pretrained=True)
model.eval()
```

### Model Description

{"A paragraph of description with *emphasis* and `code`. " * 20}

| variant | top-1 | size |
| --- | --- | --- |
| small | 71.2 | 12 MB |
| large | 78.9 | 98 MB |

### References

- [Paper](https://example.org/paper{number})
""",
        encoding="utf-8",
    )
    return path


def main() -> None:
    """Run the benchmark and print the two figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hubcore-site-bench-") as tmp:
        pages = Path(tmp) / "pages"
        pages.mkdir()
        for number in range(args.pages):
            write_page(pages, number)
        builder = SiteBuilder(SiteConfig(pages=pages), output=Path(tmp) / "site")
        started = time.perf_counter()
        report = builder.build()
        full = time.perf_counter() - started
        assert report.models == args.pages, report.problems
        time.sleep(0.01)  # a later modification time for the edited page
        write_page(pages, args.pages // 2, extra=" (edited)")
        started = time.perf_counter()
        rebuilt = builder.poll()
        one = time.perf_counter() - started
        assert rebuilt is not None
        written = len(rebuilt.written)
        print(f"full build of {args.pages} pages: {full:.2f} s ({len(report.written)} files)")
        print(f"rebuild after one page changed: {one:.3f} s ({written} files rewritten)")


if __name__ == "__main__":
    main()
