"""The policy layer: what may run and what must match.

The trust list (:mod:`~hubcore.policy.trust`), lock files (:mod:`~hubcore.policy.lock`) and the
publisher's checks of a hubconf (:mod:`~hubcore.policy.check`).
"""
