from ..net import build


def linear_large(pretrained=False):
    """The large configuration (no weights published)."""
    return build(4, 16)
