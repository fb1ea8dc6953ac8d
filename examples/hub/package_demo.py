"""Save the example hub's TinyNet as a model package and push it (``make demo``).

``python examples/hub/package_demo.py OUT DEST`` loads ``tinynet`` with its
pretrained weights, saves it as a package in OUT (this module and the model code it imports
are shipped with it, since they are not installed) and pushes it to DEST; prints the pin.
"""

from __future__ import annotations

import sys

import hubcore


@hubcore.model_config("example-tinynet")
class TinyNetConfig:
    """The configuration of the example TinyNet."""

    num_classes: int = 10


def build(config: TinyNetConfig):
    """Build a TinyNet from its configuration (weights are applied by hubcore)."""
    from models.torch_nets import TinyNet

    return TinyNet(config.num_classes)


if __name__ == "__main__":
    from pathlib import Path

    import package_demo  # this file by its module name: a package cannot name __main__

    out, dest = sys.argv[1], sys.argv[2]
    model = hubcore.load(str(Path(__file__).parent), "tinynet", pretrained=True)
    folder = hubcore.save_pretrained(
        model,
        out,
        config=package_demo.TinyNetConfig(),
        build=package_demo.build,
        model_card={"title": "Example TinyNet", "tags": ["demo", "torch"], "license": "MIT"},
    )
    print(hubcore.push(folder, dest))
