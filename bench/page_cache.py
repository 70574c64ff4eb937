"""Emptying the kernel's page cache before a cold measurement."""

from __future__ import annotations

import subprocess


def drop_page_cache() -> bool:
    """Write dirty pages, then empty the page cache (with folders and inodes); False where
    that is not allowed (it needs root)."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False
