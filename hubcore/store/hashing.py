"""sha256 on a helper thread: one owner for hashing bytes while they are written.

The downloader and the registry's store both hash what they receive as it arrives, so that
a download is one pass over its bytes and the hash overlaps the next read or write
(``hashlib`` releases the GIL on large buffers).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any

__all__ = ["OverlappedHash"]


class OverlappedHash:
    """sha256 on a helper thread, so hashing overlaps the next network read.

    :meth:`checkpoint` marks the current position (a finished chunk) without waiting: the
    hashing thread copies its state when it gets there. :meth:`rewound` returns a hasher at
    the last such mark, for when the bytes after it have to be fetched again.
    """

    _MARK = b""

    def __init__(self, digest: Any = None) -> None:
        self._digest = digest if digest is not None else hashlib.sha256()
        self._checkpoint = self._digest.copy()
        self._queue: queue.Queue[bytes | list[bytes] | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._work, name="hubcore-hash", daemon=True)
        self._thread.start()
        self._closed = False

    def _work(self) -> None:
        while (data := self._queue.get()) is not None:
            if data is self._MARK:
                self._checkpoint = self._digest.copy()
            elif isinstance(data, list):
                for piece in data:
                    self._digest.update(piece)
            else:
                self._digest.update(data)

    def update(self, data: bytes | list[bytes]) -> None:
        """Hash *data* (bytes, or a list of pieces in order) after everything given before
        (queued: returns at once; at most eight items wait, each a read of at most
        ``READ_SIZE``, so a slow hash holds the writer back rather than filling memory)."""
        if data:
            self._queue.put(data)

    def checkpoint(self) -> None:
        """Mark the current position (see :meth:`rewound`)."""
        self._queue.put(self._MARK)

    def rewound(self) -> OverlappedHash:
        """A new hasher at the last checkpoint (this one is closed)."""
        self.close()
        return OverlappedHash(self._checkpoint.copy())

    def close(self) -> None:
        """Hash what is queued and stop the helper thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        """The sha256 of everything given (closes the hasher)."""
        self.close()
        return str(self._digest.hexdigest())
