"""A backbone repository that other repositories build on through torch.hub.load."""

import torch
from torch import nn

dependencies = ["torch"]


def backbone(pretrained=False, **kwargs):
    """A linear backbone; ``pretrained=True`` fetches its trained weights."""
    model = nn.Linear(4, 3, **kwargs)
    if pretrained:
        url = "@@WEIGHTS@@/linear.pth"
        model.load_state_dict(torch.hub.load_state_dict_from_url(url, progress=False))
    return model
