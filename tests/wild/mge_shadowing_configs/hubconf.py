from models.configs import (
    linear_large,
    linear_small,
)

dependencies = ["megengine"]
