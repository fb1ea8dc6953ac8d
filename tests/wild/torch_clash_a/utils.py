from layers import build

NAME = "a"


def make():
    return build()
