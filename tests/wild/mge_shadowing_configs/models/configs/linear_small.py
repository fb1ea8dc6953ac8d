from ..net import build

URL = "@@WEIGHTS@@/linear.pkl"


def linear_small(pretrained=False):
    """The small configuration, with trained weights."""
    net = build()
    if pretrained:
        from megengine import hub

        net.load_state_dict(hub.load_serialized_obj_from_url(URL))
    return net
