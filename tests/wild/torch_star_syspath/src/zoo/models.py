from torch import nn
from torch.hub import load_state_dict_from_url

URL = "@@WEIGHTS@@/@@HASHED@@"


class Transform:
    """Scales inputs, as an image transform would."""

    def __init__(self, scale=2.0):
        self.scale = scale

    def __call__(self, x):
        return x * self.scale


def small(pretrained=False, scale=2.0):
    """A model and the transform its inputs need."""
    model = nn.Linear(4, 3)
    if pretrained:
        model.load_state_dict(load_state_dict_from_url(URL, check_hash=True, progress=False))
    return model, Transform(scale)
