import torch.hub

from .blocks import linear

URL = "@@WEIGHTS@@/linear.pth"


def tiny(pretrained=False, progress=True, **kwargs):
    """A tiny linear model.

    Args:
        pretrained: load the weights trained on nothing at all.
    """
    model = linear(**kwargs)
    if pretrained:
        state = torch.hub.load_state_dict_from_url(URL, progress=progress, map_location="cpu")
        model.load_state_dict(state)
    return model


def wide(pretrained=False, **kwargs):
    """The same model with no weights to offer."""
    return linear(4, 8, **kwargs)
