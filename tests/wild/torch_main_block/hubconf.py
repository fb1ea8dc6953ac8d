"""A detector's hubconf: entrypoints, then a block for trying them from the command line."""

import torch

dependencies = ["torch"]
URL = "@@WEIGHTS@@/linear.pth"


def _create(name, pretrained=True, **kwargs):
    from models.common import build

    net = build(**kwargs)
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(URL, progress=False))
    return net


def detector_tiny(pretrained=True, **kwargs):
    """A tiny detector."""
    return _create("detector_tiny", pretrained, **kwargs)


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    from PIL import Image

    from utils.general import cv2, print_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=str, default="detector_tiny", help="model name")
    opt = parser.parse_args()
    print_args(vars(opt))

    model = _create(name=opt.model, pretrained=True)
    images = [Image.open(Path("data/images/bus.jpg")), cv2.imread("data/images/bus.jpg")]
    results = model(images)
