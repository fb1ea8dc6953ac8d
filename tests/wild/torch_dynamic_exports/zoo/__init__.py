from . import linear
from .registry import model_entrypoints, register_model
