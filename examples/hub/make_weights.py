"""Create the example hub's weight files in weights/ (deterministic: numpy + safetensors only).

The same seed gives the same bytes on every machine, so hubconf.py can declare their sha256.
Run with --check to verify the files against the hashes in hubconf.py and models/registry.py.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights"


def _arrays(seed: int, shapes: dict[str, tuple[int, ...]]) -> OrderedDict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            out[name] = np.array(100, dtype=np.int64)
        elif name.endswith("running_var"):
            out[name] = np.ones(shape, dtype=np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    return out


TORCH_TINYNET = {
    "features.0.weight": (8, 3, 3, 3),
    "features.0.bias": (8,),
    "features.1.weight": (8,),
    "features.1.bias": (8,),
    "features.1.running_mean": (8,),
    "features.1.running_var": (8,),
    "features.1.num_batches_tracked": (),
    "classifier.weight": (10, 8),
    "classifier.bias": (10,),
}
TORCH_MLP = {
    "net.0.weight": (32, 16),
    "net.0.bias": (32,),
    "net.2.weight": (4, 32),
    "net.2.bias": (4,),
}
MGE_TINYNET = {
    "conv.weight": (8, 3, 3, 3),
    "conv.bias": (1, 8, 1, 1),
    "fc.weight": (10, 8),
    "fc.bias": (10,),
}


def make() -> dict[str, Path]:
    """Write every weight file; return {placeholder key: path}."""
    WEIGHTS.mkdir(exist_ok=True)
    files = {
        "TINYNET_C10": WEIGHTS / "tinynet-c10.safetensors",
        "TINYNET_C100": WEIGHTS / "tinynet-c100.safetensors",
        "MLP": WEIGHTS / "mlp-16-32-4.safetensors",
        "MGE_TINYNET": WEIGHTS / "mge-tinynet-c10.safetensors",
    }
    save_file(dict(_arrays(1, TORCH_TINYNET)), str(files["TINYNET_C10"]))
    c100 = {k: (100, *v[1:]) if k.startswith("classifier") else v for k, v in TORCH_TINYNET.items()}
    save_file(dict(_arrays(4, c100)), str(files["TINYNET_C100"]))
    save_file(dict(_arrays(2, TORCH_MLP)), str(files["MLP"]))
    save_file(dict(_arrays(3, MGE_TINYNET)), str(files["MGE_TINYNET"]))
    return files


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="verify hashes in the hubconf")
    args = parser.parse_args()
    files = make()
    sources = (HERE / "hubconf.py").read_text() + (HERE / "models" / "registry.py").read_text()
    bad = [key for key, path in files.items() if sha256(path) not in sources]
    for _key, path in files.items():
        print(f"{sha256(path)}  {path.relative_to(HERE)}")
    if args.check and bad:
        raise SystemExit(f"hashes in the hubconf do not match: {', '.join(bad)}")


if __name__ == "__main__":
    main()
