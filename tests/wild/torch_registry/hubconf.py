import importlib
from importlib import import_module

import torch

dependencies = ["torch"]

utils = importlib.import_module("utils")


def _build(arch, pretrained):
    # The registry pattern: the model module is chosen by name at call time.
    net = import_module(f"models.{arch}").build()
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(utils.URL, progress=False))
    return net


def linear(pretrained=False):
    """A linear model found through the registry."""
    return _build("linear", pretrained)


def deep(pretrained=False):
    """A two-layer model found through the registry."""
    return _build("deep", pretrained)
