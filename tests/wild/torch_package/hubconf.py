from torch import nn
from torch.hub import load_state_dict_from_url

from nets.linear import tiny, wide

dependencies = ["torch"]
