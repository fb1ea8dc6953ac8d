"""Example hub: a few small models for PyTorch and MegEngine, plus a tokenizer.

Framework imports happen inside the entrypoints, so each entrypoint needs only its own
framework, and `hubcore list` works with neither installed.
"""

from models.registry import mlp  # re-exported: `hubcore help` follows it to models/registry.py

from hubcore import Weights, pretrained

dependencies = ["numpy"]


@pretrained(
    {
        "c10": Weights(
            "weights/tinynet-c10.safetensors",
            sha256="755edc7016a0343fb201e50eb6c6d79b99570fce4c1c7dfd11a9c18f98f0c389",
        ),
        "c100": Weights(
            "weights/tinynet-c100.safetensors",
            sha256="6cae7ae36b5b337f296e6cd7afae8605d049a55159b26b991df6a134620e05c7",
        ),
    },
    default="c10",
)
def tinynet(num_classes: int = 10):
    """TinyNet (PyTorch): conv 3->8, batch norm, global pooling, linear 8->num_classes.

    Weight variants: `c10` (default, num_classes=10) and `c100` (pass num_classes=100).
    """
    from models.torch_nets import TinyNet

    return TinyNet(num_classes)


@pretrained(
    "weights/mge-tinynet-c10.safetensors",
    sha256="cac2776f076e6749917c9b41454be42d8927ef61fd8e5dd0d936540c52caf5a9",
)
def mge_tinynet(num_classes: int = 10):
    """TinyNet (MegEngine): conv 3->8, global pooling, linear 8->num_classes."""
    from models.megengine_nets import TinyNet

    return TinyNet(num_classes)


def tokenizer(vocab: list[str] | None = None):
    """A whitespace tokenizer over a small default vocabulary (no framework needed)."""
    from tokenizer import WhitespaceTokenizer

    return WhitespaceTokenizer(vocab or ["the", "model", "hub", "loads", "weights"])


def _shared_helper():
    """Helpers start with an underscore and are not entrypoints."""
