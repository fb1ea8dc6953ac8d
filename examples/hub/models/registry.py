"""Entrypoints defined outside hubconf.py and re-exported by it."""

from hubcore import pretrained


@pretrained(
    "weights/mlp-16-32-4.safetensors",
    sha256="187abaf842146a4094378d16359fc4543d7058d2b7e56421a73af8c1bb3bdbab",
)
def mlp(in_features: int = 16, hidden: int = 32, out_features: int = 4):
    """A two-layer perceptron (PyTorch), 16 -> 32 -> 4.

    Pretrained weights exist for the default sizes only.
    """
    from models.torch_nets import MLP

    return MLP(in_features, hidden, out_features)
