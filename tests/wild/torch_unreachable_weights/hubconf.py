"""Weights on hosts that cannot be reached: one whose name does not resolve, one that refuses
the connection (as on a machine without network, or behind a firewall)."""

from torch import nn
from torch.hub import load_state_dict_from_url

dependencies = ["torch"]


def _linear(url, pretrained):
    model = nn.Linear(4, 3)
    if pretrained:
        model.load_state_dict(load_state_dict_from_url(url, progress=False))
    return model


def unresolvable(pretrained=False):
    """Weights on a host name that does not resolve."""
    return _linear("http://hubcore-wild-weights.invalid/linear.pth", pretrained)


def refused(pretrained=False):
    """Weights on a host that refuses the connection."""
    return _linear("http://@@REFUSING@@/linear.pth", pretrained)
