import megengine.hub as hub
import megengine.module as M

URL = "@@WEIGHTS@@/linear.pkl"


class Block(M.Module):
    def __init__(self):
        super().__init__()
        self.fc = M.Linear(4, 4)


class Head(M.Module):
    def __init__(self):
        super().__init__()
        self.fc = M.Linear(4, 3)


@hub.pretrained(URL)
def linear(**kwargs):
    """A linear model with trained weights."""
    return M.Linear(4, 3, **kwargs)


def linear_converted(pretrained=False):
    """A linear model converted from another framework (no weights yet)."""
    return M.Linear(4, 3)
