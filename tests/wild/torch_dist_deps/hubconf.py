import torch

dependencies = ["torch", "PyYAML>=5", "python-dateutil"]
URL = "@@WEIGHTS@@/linear.pth"


def model(pretrained=False):
    """Needs PyYAML (imported as yaml) and python-dateutil (imported as dateutil)."""
    import dateutil
    import yaml

    net = torch.nn.Linear(4, 3)
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(URL, progress=False))
    return net
