model_entrypoints = {}


def register_model(fn):
    """Record a model function under its name."""
    model_entrypoints[fn.__name__] = fn
    return fn
