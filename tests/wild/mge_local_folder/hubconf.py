"""A repository cloned to a local folder, whose path a user hands to megengine.hub."""

dependencies = ["megengine"]


def tiny(pretrained=False):
    """Never built here: the folder is refused before anything is read."""
    raise AssertionError("a local folder given to megengine.hub must not be loaded")
