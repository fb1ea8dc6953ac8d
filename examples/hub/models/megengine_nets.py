"""MegEngine architectures of the example hub."""

import megengine.functional as F
import megengine.module as M

from models.common import NUM_FEATURES


class TinyNet(M.Module):
    """A small convolutional classifier for 3-channel images (MegEngine)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = M.Conv2d(3, NUM_FEATURES, 3, padding=1)
        self.fc = M.Linear(NUM_FEATURES, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1)
        return self.fc(F.flatten(x, 1))
