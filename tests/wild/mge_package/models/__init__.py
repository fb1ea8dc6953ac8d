from .linear import build
