"""The repository layer: reading and running a hub repository's code.

Static discovery of ``hubconf.py`` (:mod:`~hubcore.repo.discovery`), the weight-spec grammar
shared by discovery and the decorator (:mod:`~hubcore.repo.weights`), ``@pretrained``
(:mod:`~hubcore.repo.pretrained`), import isolation (:mod:`~hubcore.repo.isolation`), the
redirects of peer hub calls made by repository code (:mod:`~hubcore.repo.redirects`) and the
dependency checks (:mod:`~hubcore.repo.dependencies`).
"""
