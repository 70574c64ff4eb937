"""FileMetaBuild over hostile folders: no directory entry aborts a scan, nothing outside the
root is read, hashing is streamed, and size, time and fingerprint describe the same bytes."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import stat
import struct
import tracemalloc
import zlib

import pytest
from PIL import Image

from mmdm.adapters.errors import AdapterError, NotFoundError
from mmdm.adapters.ids import file_meta_id
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.storage import LocalStorage
from tests.adapters.imagefiles import image_bytes, png_bomb
from tests.adapters.reading_storage import ReadRecordingStorage


def _register(store, root):
    ds = store.create_dataset("ds", root.as_uri())
    store.create_version(ds.dataset_id)
    return ds.dataset_id


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _meta(store, ds, root, rel):
    return store.get_file_meta(file_meta_id(ds, "v1", (root / rel).as_uri()))


def _absent(store, ds, root, rel) -> bool:
    with pytest.raises(NotFoundError):
        _meta(store, ds, root, rel)
    return True


def _reasons(store, result):
    """{last part of the URI: reason} of the job's failed files."""
    return {uri.rstrip("/").rsplit("/", 1)[1]: why
            for uri, why in store.job_file_failures(result.job_id)}


def _md5(path):
    md5 = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def _socket_at(path):
    """A Unix socket bound at ``path`` (bound from its folder: socket paths are short)."""
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        sock.bind(path.name)
    finally:
        os.chdir(cwd)
    return sock


def _hostile_folder(tmp_path):
    """Good files next to one entry of every bad kind; returns (root, expected failures as
    {name: reason start}, expected skips as {name: reason end}, good names)."""
    root = tmp_path / "imgs"
    _write(root / "good.png", image_bytes("png"))
    _write(root / "sub" / "good.jpg", image_bytes("jpg"))
    os.symlink("good.png", root / "alias.png")  # a link inside the root is fine
    _write(root / "notes.txt", b"not an image")
    with open(os.path.join(os.fsencode(root), b"bad\xff.png"), "wb") as fh:
        fh.write(image_bytes("png"))
    os.symlink("loop.png", root / "loop.png")
    os.symlink("pong.png", root / "ping.png")
    os.symlink("ping.png", root / "pong.png")
    os.symlink("nowhere.png", root / "dangling.png")
    _write(tmp_path / "outside" / "secret.png", image_bytes("png"))
    os.symlink(tmp_path / "outside" / "secret.png", root / "outside.png")
    os.symlink("/dev/null", root / "null.png")  # a device, and outside the root
    os.symlink(root / "sub", root / "album")
    os.mkfifo(root / "pipe.png")
    sock = _socket_at(root / "sock.png")
    failures = {
        "bad%FF.png": "name is not valid UTF-8", "loop.png": "symlink loop",
        "ping.png": "symlink loop", "pong.png": "symlink loop",
        "dangling.png": "dangling link", "outside.png": "link leads outside",
        "null.png": "link leads outside",
    }
    skips = {"album": "a link to a folder (not followed)", "pipe.png": "a FIFO",
             "sock.png": "a socket"}
    try:
        os.mknod(root / "dev.png", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        skips["dev.png"] = "a device"
    except OSError:  # no CAP_MKNOD here: the device link above still covers devices
        pass
    return root, failures, skips, ["good.png", "sub/good.jpg", "alias.png"], sock


def test_every_kind_of_bad_entry_is_a_failure_or_a_skip_and_a_rerun_gives_the_same(store,
                                                                                    tmp_path):
    root, failures, skips, good, sock = _hostile_folder(tmp_path)
    ds = _register(store, root)
    with sock:
        runs = [build_file_metas(store, ds, "v1") for _ in range(2)]
    for n, result in enumerate(runs):
        job = store.get_job(result.job_id)
        assert job.status == "PartialFailed"
        assert result.failed == len(failures) and job.failed_file_count == len(failures)
        reasons = _reasons(store, result)
        assert set(reasons) == set(failures)
        for name, why in failures.items():
            assert reasons[name].startswith(why), (name, reasons[name])
        assert result.skipped == len(skips) + 1  # and notes.txt
        assert {uri.rsplit("/", 1)[1]: why for uri, why in result.skips} == {
            name: f"not a regular file: {why}" for name, why in skips.items()}
        logs = "\n".join(store.job_logs(result.job_id))
        assert all(f"Skipped {(root / name).as_uri()}: " in logs for name in skips)
        assert (result.new, result.unchanged) == ((3, 0) if n == 0 else (0, 3))
    for rel in good:
        assert _meta(store, ds, root, rel).status == "ACTIVE"
    assert store.count_file_metas(ds, "v1") == len(good)


class _RemovesAfterListing(LocalStorage):
    """The real local storage; once the whole listing is out, ``change`` runs: files go or
    change between the listing and the reading."""

    def __init__(self, root, change):
        super().__init__(root.as_uri())
        self.change = change

    def list(self, prefix="", **kw):
        listed = list(super().list(prefix, **kw))
        self.change()
        yield from listed


def test_files_vanished_or_rewritten_between_listing_and_reading_fail_or_are_read_as_they_are(
        store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "good.png", image_bytes("png"))
    _write(root / "gone" / "a.png", image_bytes("png"))
    _write(root / "deleted.png", image_bytes("png"))
    _write(root / "cut.png", image_bytes("png", (200, 200)))
    _write(root / "smaller.png", image_bytes("png", (300, 300)))
    smaller = image_bytes("png", (10, 10))

    def change():
        shutil.rmtree(root / "gone")
        (root / "deleted.png").unlink()
        _write(root / "cut.png", (root / "cut.png").read_bytes()[:100])
        _write(root / "smaller.png", smaller)

    ds = _register(store, root)
    result = build_file_metas(store, ds, "v1", storage=_RemovesAfterListing(root, change))
    assert store.get_job(result.job_id).status == "PartialFailed"
    reasons = _reasons(store, result)
    assert reasons["a.png"] == reasons["deleted.png"] == "vanished: no such file"
    assert reasons["cut.png"].startswith("truncated")
    assert set(reasons) == {"a.png", "deleted.png", "cut.png"}
    assert _meta(store, ds, root, "good.png").status == "ACTIVE"
    m = _meta(store, ds, root, "smaller.png")  # read as it is now, not as listed
    assert (m.data_size, m.meta_attributes["ImageWidth"]) == (len(smaller), 10)

    again = build_file_metas(store, ds, "v1")
    assert store.get_job(again.job_id).status == "PartialFailed"  # cut.png: never Failed
    assert set(_reasons(store, again)) == {"cut.png"} and again.unchanged == 2


class _RemovesAFolderWhileListing(LocalStorage):
    """The real local storage; ``sub/`` goes once the first root-level file is listed, so
    the listing cannot open it (folders are listed after the files beside them)."""

    def list(self, prefix="", **kw):
        for n, obj in enumerate(super().list(prefix, **kw)):
            if n == 0:
                shutil.rmtree(self.root / "sub")
            yield obj


def test_a_folder_that_cannot_be_listed_is_a_failure_and_this_scan_deletes_nothing(
        store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "top.png", image_bytes("png"))
    for name in ("a.png", "b.png"):
        _write(root / "sub" / name, image_bytes("png"))
    ds = _register(store, root)
    assert build_file_metas(store, ds, "v1").new == 3

    result = build_file_metas(store, ds, "v1", storage=_RemovesAFolderWhileListing(str(root)))
    assert store.get_job(result.job_id).status == "PartialFailed"
    assert _reasons(store, result) == {"sub": "folder cannot be listed: vanished: no such file"}
    assert result.deleted == 0 and store.count_file_metas(ds, "v1") == 3
    assert any("no file is marked DELETED" in line for line in store.job_logs(result.job_id))

    listed = build_file_metas(store, ds, "v1")  # a complete listing proves them gone
    assert (listed.deleted, store.get_job(listed.job_id).status) == (2, "Succeeded")


def test_a_link_outside_the_root_is_not_registered_and_its_target_never_read(store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "good.png", image_bytes("png"))
    _write(tmp_path / "private" / "secret.png", image_bytes("png", (64, 64)))
    os.symlink(tmp_path / "private" / "secret.png", root / "leak.png")
    os.symlink(tmp_path / "private", root / "leaks")
    ds = _register(store, root)

    storage = ReadRecordingStorage(root)
    result = build_file_metas(store, ds, "v1", storage=storage)
    assert storage.reads == ["good.png"]  # the link was never opened
    assert _reasons(store, result) == {"leak.png": (
        "link leads outside the dataset folder (follow_links_outside_root is off)")}
    assert _absent(store, ds, root, "leak.png")
    assert _absent(store, ds, root, "leaks/secret.png")  # links to folders: not followed
    with pytest.raises(AdapterError, match="outside the dataset folder"):
        storage.open("leak.png")  # nor can anything else read it through this storage

    allowed = ReadRecordingStorage(root, follow_links_outside_root=True)
    assert build_file_metas(store, ds, "v1", storage=allowed).new == 1  # when configured
    assert _meta(store, ds, root, "leak.png").meta_attributes["ImageWidth"] == 64
    refused = build_file_metas(store, ds, "v1")  # the default again: its meta goes
    assert (refused.failed, refused.deleted) == (1, 1)
    assert _meta(store, ds, root, "leak.png").status == "DELETED"


def _padded_png(path, padding: int) -> None:
    """A valid PNG of ``padding`` bytes more: a private chunk between IDAT and IEND,
    written in pieces so that the test itself stays small."""
    png = image_bytes("png")
    kind = b"pdNg"
    with open(path, "wb") as fh:
        fh.write(png[:-12] + struct.pack(">I", padding) + kind)  # IEND is the last 12 bytes
        crc, piece = zlib.crc32(kind), os.urandom(1 << 20)
        for _ in range(padding // len(piece)):
            fh.write(piece)
            crc = zlib.crc32(piece, crc)
        fh.write(struct.pack(">I", crc) + png[-12:])


def test_a_64_mib_file_is_hashed_in_flat_memory(store, tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    _padded_png(root / "big.png", 64 << 20)
    ds = _register(store, root)
    tracemalloc.start()
    try:
        result = build_file_metas(store, ds, "v1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (result.new, result.failed) == (1, 0)
    assert peak < 8 << 20, f"peak {peak >> 20} MiB for a 64 MiB file"
    m = _meta(store, ds, root, "big.png")
    assert (m.data_size, m.file_fingerprint) == ((root / "big.png").stat().st_size,
                                                 _md5(root / "big.png"))


def test_a_file_grown_between_listing_and_hashing_gets_the_size_of_the_bytes_hashed(
        store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "grows.png", image_bytes("png", (10, 10)))
    os.utime(root / "grows.png", (1_700_000_000, 1_700_000_000))
    ds = _register(store, root)

    def grow():  # rewritten larger (and later) after the listing
        _write(root / "grows.png", image_bytes("png", (400, 300), colour=(1, 2, 3)))

    build_file_metas(store, ds, "v1", storage=_RemovesAfterListing(root, grow))
    m = _meta(store, ds, root, "grows.png")
    st = (root / "grows.png").stat()
    assert (m.data_size, m.file_update_time) == (st.st_size, st.st_mtime_ns // 1_000_000)
    assert m.file_fingerprint == _md5(root / "grows.png")
    assert m.meta_attributes["ImageWidth"] == 400
    recording = ReadRecordingStorage(root)  # what was recorded matches the file: no need to read it
    assert build_file_metas(store, ds, "v1", storage=recording).unchanged == 1
    assert recording.reads == []


class _AppendsWhileRead:
    """A file being written to: its first read appends ``extra`` to it."""

    def __init__(self, fh, path, extra):
        self._fh, self._path, self._extra = fh, path, extra

    def read(self, n=-1):
        if self._extra:
            with open(self._path, "ab") as out:
                out.write(self._extra)
            self._extra = b""
        return self._fh.read(n)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


class _Busy(LocalStorage):
    """busy.png is being written to while the scan reads it."""

    def open(self, key):
        fh = super().open(key)
        return _AppendsWhileRead(fh, self.root / key, b"\0" * 16) if key == "busy.png" else fh


def test_a_file_changed_while_being_read_fails_and_the_next_scan_registers_it(store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "busy.png", image_bytes("png"))
    _write(root / "good.png", image_bytes("png"))
    ds = _register(store, root)
    result = build_file_metas(store, ds, "v1", storage=_Busy(str(root)))
    assert store.get_job(result.job_id).status == "PartialFailed"
    assert {k: v.split(":")[0] for k, v in _reasons(store, result).items()} == {
        "busy.png": "changed while being read"}
    assert _absent(store, ds, root, "busy.png")

    later = build_file_metas(store, ds, "v1")  # it stopped changing: registered as it is
    assert (later.new, later.failed) == (1, 0)
    m = _meta(store, ds, root, "busy.png")
    assert (m.data_size, m.file_fingerprint) == ((root / "busy.png").stat().st_size,
                                                 _md5(root / "busy.png"))


def _no_sos_jpeg() -> bytes:
    jpg = image_bytes("jpg", (200, 200))
    return jpg[:jpg.index(b"\xff\xda")] + b"\xff\xd9"  # the headers, then the end marker


def _header_only_gif(width: int, height: int) -> bytes:
    """A GIF whose one frame claims ``width`` x ``height`` pixels over a few bytes of data."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + frame + b"\x02\x02\x44\x01\x00" + b";"


def _png_without_idat(width: int, height: int) -> bytes:
    """Header and end, nothing between."""
    ihdr = png_bomb(width, height)[8:33]  # the signature, then the IHDR chunk
    return b"\x89PNG\r\n\x1a\n" + ihdr + png_bomb()[-12:]


def _header_only_bmp(width: int, height: int) -> bytes:
    bmp = image_bytes("bmp", (2, 2))
    head = bmp[:2] + struct.pack("<I", 70) + bmp[6:18] + struct.pack("<ii", width, height)
    return head + bmp[26:70]


def test_header_only_images_fail_and_highly_compressed_ones_do_not(store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "header_only.png", png_bomb(9000, 9000))  # 9000x9000 over a 66-byte file
    _write(root / "header_only_4k.png", png_bomb(4000, 4000))  # needs 1,982 bytes at least
    _write(root / "no_idat.png", _png_without_idat(20, 20))
    _write(root / "no_sos.jpg", _no_sos_jpeg())
    _write(root / "header_only.gif", _header_only_gif(9000, 9000))
    _write(root / "header_only.bmp", _header_only_bmp(9000, 9000))
    solid = io.BytesIO()  # one bit a pixel, all zero: within 5% of deflate's best ratio
    Image.new("1", (4000, 4000)).save(solid, "PNG", optimize=True)
    _write(root / "solid.png", solid.getvalue())
    _write(root / "good.gif", image_bytes("gif", (300, 300)))
    ds = _register(store, root)
    result = build_file_metas(store, ds, "v1")
    reasons = _reasons(store, result)
    assert set(reasons) == {"header_only.png", "header_only_4k.png", "no_idat.png", "no_sos.jpg", "header_only.gif",
                            "header_only.bmp"}
    assert all(why.startswith("truncated: header-only image: ") for why in reasons.values())
    assert "9000x9000" in reasons["header_only.png"]
    assert (result.new, store.get_job(result.job_id).status) == (2, "PartialFailed")
    assert _meta(store, ds, root, "solid.png").meta_attributes["ImageWidth"] == 4000
