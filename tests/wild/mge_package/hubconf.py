from megengine import hub

from models import build

dependencies = ["megengine"]
URL = "@@WEIGHTS@@/linear.pkl"


@hub.pretrained(URL)
def tiny(**kwargs):
    """A tiny MegEngine linear model."""
    return build(**kwargs)


def _helper():
    return "megengine.hub lists names with one underscore; hubcore does not"
