from zoo.models import Transform, small

__all__ = ["Transform", "small"]
