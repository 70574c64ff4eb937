"""The real local storage, recording every file a scan reads, whichever way: ``open``
(streamed, as the scan hashes local files) or ``read``."""

from __future__ import annotations

from mmdm.adapters.storage import LocalStorage


class ReadRecordingStorage(LocalStorage):
    def __init__(self, root, **options):
        super().__init__(root.as_uri(), **options)
        self.reads: list[str] = []

    def read(self, key, byte_range=None):
        self.reads.append(key)
        return super().read(key, byte_range)

    def open(self, key):
        self.reads.append(key)
        return super().open(key)
