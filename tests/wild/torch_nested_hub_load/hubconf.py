"""A depth-estimation style repository: its entrypoint builds the backbone by loading another
repository with torch.hub.load, then wraps it in a head of its own."""

import torch
from torch import nn

dependencies = ["torch"]


class DepthNet(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.backbone(x) * self.scale


def depth(pretrained=False):
    """A depth model on the backbone of wild/torch_nested_backbone."""
    backbone = torch.hub.load("wild/torch_nested_backbone", "backbone", pretrained=pretrained)
    return DepthNet(backbone)


def backbone_names():
    """What the backbone repository offers, listed through torch.hub.list."""
    return torch.hub.list("wild/torch_nested_backbone")
