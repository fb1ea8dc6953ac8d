from layers import build

NAME = "b"


def make():
    return build()
