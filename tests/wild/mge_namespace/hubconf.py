from official.vision.classification.resnet.model import resnet18

dependencies = ["megengine"]
