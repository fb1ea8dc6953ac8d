import megengine.module as M

from . import defaults


def build(in_features=defaults.IN, out_features=defaults.OUT, **kwargs):
    return M.Linear(in_features, out_features, **kwargs)
