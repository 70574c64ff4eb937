"""Whether a URI lies inside a root: the check behind every "only under these folders" rule
(query images under registered datasets, exports under configured export roots)."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from ..errors import ConfigError
from .local import local_path


def within(uri: str, root: str) -> bool:
    """``uri`` names ``root`` or something under it. Local paths are compared after resolving
    ``..`` and symlinks (a link inside the root to a file outside it is outside); OSS keys
    after normalising, and a ``..`` segment is never inside. A relative path is nowhere."""
    if uri.startswith("oss://") or root.startswith("oss://"):
        if not (uri.startswith("oss://") and root.startswith("oss://")) or ".." in uri.split("/"):
            return False
        key, base = posixpath.normpath(uri[6:]), posixpath.normpath(root[6:])
        return key == base or key.startswith(base + "/")
    try:
        path, base = local_path(uri), local_path(root)
    except ConfigError:  # another scheme
        return False
    if not (path.is_absolute() and base.is_absolute()):
        return False
    resolved, resolved_base = os.path.realpath(path), os.path.realpath(base)
    return os.path.commonpath([resolved, resolved_base]) == resolved_base


def within_any(uri: str, roots: Iterable[str]) -> bool:
    return any(within(uri, root) for root in roots)
