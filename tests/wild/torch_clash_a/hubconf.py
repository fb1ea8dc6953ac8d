import torch

from utils import make

dependencies = ["torch"]
URL = "@@WEIGHTS@@/linear.pth"


def model(pretrained=False):
    """Repository a's model."""
    net = make()
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(URL, progress=False))
    return net


def which():
    """Which repository's utils this is, imported lazily."""
    from utils import NAME

    return NAME
