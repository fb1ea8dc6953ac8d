import os
import sys

sys.path.append(os.path.join(os.path.dirname(__file__), "lib"))

from zoo_mge import *

dependencies = ["megengine", "numpy"]
