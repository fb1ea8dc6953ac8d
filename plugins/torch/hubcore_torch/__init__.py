"""PyTorch backend for hubcore.

Installing this distribution registers the ``torch`` backend through the ``hubcore``
entry-point group; hubcore then applies ``@pretrained`` weights to any ``torch.nn.Module`` an
entrypoint returns. :func:`load_weights` is hubcore's ``load_state_dict_from_url``.
:mod:`hubcore_torch.hub` is ``torch.hub``'s API on hubcore (also importable as
``hubcore.compat.torch_hub``).
"""

from hubcore_torch.backend import TorchBackend, load_weights

__all__ = ["TorchBackend", "load_weights"]
