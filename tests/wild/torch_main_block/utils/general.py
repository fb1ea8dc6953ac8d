import cv2  # only the __main__ block of the hubconf imports this module


def print_args(args):
    print(args)
