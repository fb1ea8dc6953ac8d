from .nets import Block, Head, linear, linear_converted

pretrained = ["linear"]
converted = ["linear_converted"]
__all__ = pretrained + converted
