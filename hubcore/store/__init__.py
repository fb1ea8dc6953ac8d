"""The storage layer: bytes in and out, never repository code.

The HTTP client (:mod:`~hubcore.store.http`), verified and resumable transfers
(:mod:`~hubcore.store.transfer`, :mod:`~hubcore.store.downloader`), the content-addressed cache
(:mod:`~hubcore.store.cache`), safe archive extraction (:mod:`~hubcore.store.archives`), atomic
file writes (:mod:`~hubcore.store.files`) and header reads of weight files. Nothing here imports
the plugin manager, the repository layer, the policies or the API.
"""
