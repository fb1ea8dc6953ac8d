# Each config is a function named like its module: the function shadows the submodule.
from .linear_large import linear_large
from .linear_small import linear_small

__all__ = [k for k in globals().keys() if not k.startswith("_")]
