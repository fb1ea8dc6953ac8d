import torch
from torch import nn

from .registry import register_model

URL = "@@WEIGHTS@@/linear.pth"


@register_model
def linear(pretrained=False, **kwargs):
    """A linear model, registered by a decorator."""
    net = nn.Linear(4, 3, **kwargs)
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(URL, progress=False))
    return net


@register_model
def linear_wide(pretrained=False, **kwargs):
    """A wider linear model, without weights."""
    return nn.Linear(4, 8, **kwargs)
