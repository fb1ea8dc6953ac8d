from models import *

dependencies = ["megengine"]
