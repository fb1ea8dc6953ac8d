import megengine.module as M
from megengine import hub

URL = "@@WEIGHTS@@/linear.pkl"


@hub.pretrained(URL)
def resnet18(**kwargs):
    """A stand-in for ResNet-18 from a namespace package (official/ has no __init__.py)."""
    return M.Linear(4, 3, **kwargs)
