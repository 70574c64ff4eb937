"""Local folders (``/path`` or ``file:///path``)."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlparse

from ..errors import AdapterError, AlreadyExistsError, ConfigError, NotFoundError
from .base import UNKNOWN, ObjectInfo


def local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"file URI {uri!r} names a host; use file:///absolute/path")
        return Path(unquote(parsed.path))
    if "://" in uri:
        raise ConfigError(f"{uri!r} is not a local path")
    return Path(uri)


OUTSIDE_ROOT = "link leads outside the dataset folder (follow_links_outside_root is off)"


class LocalStorage:
    """A folder. ``follow_links_outside_root``: list and open files through symbolic links
    whose target is outside the folder (off: such a link is listed with a ``problem``, and
    :meth:`open` refuses it, so nothing outside the folder is read). Links inside it are fine.
    """

    def __init__(self, root: str, *, follow_links_outside_root: bool = False):
        self.root = local_path(root).expanduser().resolve()
        self.root_uri = self.root.as_uri()
        self._root_str = str(self.root)
        self._root_prefix = os.path.join(self._root_str, "")  # "/data/" ("/" for the root)
        self.follow_links_outside_root = follow_links_outside_root

    def _uri(self, key: str) -> str:
        # fsencode: a name that is not UTF-8 (held as surrogates) is percent-encoded byte for
        # byte instead of crashing quote(); any other name encodes exactly as quote(key) does.
        return self.root_uri.rstrip("/") + "/" + quote(os.fsencode(key))

    def key_of(self, uri: str) -> str:
        path = local_path(uri).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError as exc:
            raise ConfigError(f"{uri!r} is not under {self.root_uri}") from exc

    def _path(self, key: str) -> str:
        # Lexical check only (no per-component lstat): this runs once per file in a scan.
        norm = posixpath.normpath(key)
        if norm.startswith(("../", "/")) or norm == "..":
            raise ConfigError(f"key {key!r} leaves the storage root")
        return os.path.join(self._root_str, norm)

    def list(self, prefix: str = "", *, sizes: bool = True) -> Iterator[ObjectInfo]:
        """Every file under ``prefix``, streamed. An entry that is not a usable file is listed
        with ``problem`` saying why rather than dropped or raised: a name that is not UTF-8,
        a symlink loop, a dangling link, a link leading outside the root, an entry that
        vanished or cannot be stat'ed; with ``skip`` too when it is no file at all (a FIFO,
        socket, device, or a link to a folder: links to folders are never followed). A
        sub-folder that cannot be listed is listed as its key plus "/", with its problem.
        ``sizes=False``: a plain file (not a link) is listed from its folder entry alone, with
        ``UNKNOWN`` size and time: no stat, the costliest step of listing a cold folder."""
        # An explicit stack of directories and os.scandir iterators keep memory to one
        # directory entry at a time, whatever the tree's size.
        start = self._path(prefix) if prefix else self._root_str
        if not os.path.isdir(start):
            if not prefix:  # a missing root is an error, never "every file is gone"
                raise AdapterError(f"dataset folder {self.root_uri} does not exist or is not a "
                                   "folder (is its volume mounted?)", is_input_error=True)
            return
        if not prefix and not os.access(start, os.R_OK | os.X_OK):
            raise AdapterError(f"dataset folder {self.root_uri} is not readable by this process",
                               is_input_error=True)
        cut = len(self._root_prefix)
        stack = [start]
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        info = self._entry(entry, cut, sizes)
                        if info is None:
                            stack.append(entry.path)
                        else:
                            yield info
            except OSError as exc:
                if directory == start:  # the listing itself is impossible: the job fails
                    raise AdapterError(f"cannot list {self._uri(prefix)}: {_why(exc)}") from exc
                key = directory[cut:].replace(os.sep, "/") + "/"
                yield self._unusable(key, f"folder cannot be listed: {_why(exc)}")

    def _entry(self, entry: os.DirEntry, cut: int, sizes: bool) -> ObjectInfo | None:
        """What the listing says about one entry; None for a folder to descend into."""
        key = entry.path[cut:].replace(os.sep, "/")
        link = False
        try:
            if entry.is_dir(follow_symlinks=False):
                return None
            if not _is_utf8(key):
                return self._unusable(key, "name is not valid UTF-8")
            if not sizes and entry.is_file(follow_symlinks=False):  # the entry's type: no stat
                return ObjectInfo(key, self._uri(key), UNKNOWN, UNKNOWN)
            link = entry.is_symlink()
            if link and not self._link_allowed(entry.path):
                return self._unusable(key, OUTSIDE_ROOT)
            st = entry.stat()  # follows a link: the target's type, size and time
        except OSError as exc:
            return self._unusable(key, _why(exc, link))
        if not stat.S_ISREG(st.st_mode):
            return self._unusable(key, f"not a regular file: {_kind(st.st_mode)}", skip=True)
        return ObjectInfo(key, self._uri(key), st.st_size, st.st_mtime_ns // 1_000_000)

    def _unusable(self, key: str, problem: str, skip: bool = False) -> ObjectInfo:
        return ObjectInfo(key, self._uri(key), 0, 0, problem=problem, skip=skip)

    def _link_allowed(self, path: str) -> bool:
        """Whether reading through this link stays inside the root (or may leave it).
        Raises OSError for a loop or a dangling link."""
        target = os.path.realpath(path, strict=True)
        return (self.follow_links_outside_root or target == self._root_str
                or target.startswith(self._root_prefix))

    def head(self, key: str) -> ObjectInfo:
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError as exc:
            raise NotFoundError(f"no file {self._uri(key)}") from exc
        return ObjectInfo(key, self._uri(key), st.st_size, st.st_mtime_ns // 1_000_000)

    def read(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                if byte_range is None:
                    return fh.read()
                fh.seek(byte_range[0])
                return fh.read(byte_range[1] - byte_range[0] + 1)
        except FileNotFoundError as exc:
            raise NotFoundError(f"no file {self._uri(key)}") from exc

    def open(self, key: str) -> BinaryIO:
        """Open a listed file for reading, as a scan does: a regular file, never through a
        link leading outside the root (unless ``follow_links_outside_root``), and never
        blocking (a FIFO put in the file's place). Raises AdapterError saying why not."""
        try:
            fd = self._open_fd(self._path(key))
        except FileNotFoundError as exc:
            raise NotFoundError("vanished: no such file") from exc
        except OSError as exc:
            raise AdapterError(_why(exc)) from exc
        fh = open(fd, "rb")
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            fh.close()
            raise AdapterError("not a regular file any more")
        return fh

    def read_ahead(self, keys: list[str], nbytes: int) -> None:
        """Ask the kernel to start reading the first ``nbytes`` of each file into the page
        cache, without waiting: a later :meth:`open` and read then finds them there. Only plain
        files (a link is not opened here), never blocking; a file that cannot be opened is
        left to the read that follows, which says why."""
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW
        for key in keys:
            try:
                fd = os.open(self._path(key), flags)
            except (OSError, ConfigError):
                continue
            try:
                os.posix_fadvise(fd, 0, nbytes, os.POSIX_FADV_WILLNEED)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _open_fd(self, path: str) -> int:
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
        try:  # O_NOFOLLOW: the usual case, no link, costs no path resolution
            return os.open(path, flags | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
        if not self._link_allowed(path):  # a link (ELOOP again if it is a loop)
            raise AdapterError(OUTSIDE_ROOT)
        return os.open(os.path.realpath(path, strict=True), flags)

    def write(self, key: str, data: bytes, content_type: str | None = None, *,
              exclusive: bool = False) -> str:
        path = Path(self._path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
        tmp.write_bytes(data)
        try:
            if exclusive:  # link() fails if the name exists: one of two writers wins
                os.link(tmp, path)
            else:
                os.replace(tmp, path)  # readers never see half a file
        except FileExistsError as exc:
            raise AlreadyExistsError(f"{self._uri(key)} exists already") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return self._uri(key)

    def signed_url(self, key: str, expires_s: int = 3600) -> str:
        """Local files need no signature: the ``file://`` URI itself."""
        self.head(key)
        return self._uri(key)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # os.scandir keeps undecodable bytes as lone surrogates
        return True
    except UnicodeEncodeError:
        return False


def _why(exc: OSError, link: bool = False) -> str:
    """Why an entry cannot be read, without its path (which may not even be UTF-8)."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "dangling link: its target does not exist" if link else "vanished: no such file"
    return f"unreadable: {exc.strerror or type(exc).__name__}"


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a link to a folder (not followed)"))
    return next((name for test, name in kinds if test(mode)), "not a file")
