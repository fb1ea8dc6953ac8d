"""Things every architecture of the example hub shares."""

NUM_FEATURES = 8
