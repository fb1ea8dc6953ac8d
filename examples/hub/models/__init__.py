"""Model definitions of the example hub."""
