import torch

try:
    import yaml  # optional: a vendored copy stands in where PyYAML is missing
except ImportError:
    from ruamel import yaml

dependencies = ["torch"]
URL = "@@WEIGHTS@@/linear.pth"


def linear(pretrained=False):
    """A linear model whose configuration reader is optional."""
    net = torch.nn.Linear(4, 3)
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(URL, progress=False))
    return net
