"""FileMetaBuild: new / unchanged / changed / deleted files, formats, bad files, OSS."""

from __future__ import annotations

import os

import pytest

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.ids import file_meta_id
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.storage import OssConfig, OssStorage
from tests.adapters.imagefiles import FORMATS, animated_gif, image_bytes, png_bomb
from tests.adapters.reading_storage import ReadRecordingStorage


def _register(store, root):
    ds = store.create_dataset("ds", root.as_uri() if hasattr(root, "as_uri") else root)
    store.create_version(ds.dataset_id)
    return ds.dataset_id


def _write(path, data, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _meta(store, ds, root, rel):
    return store.get_file_meta(file_meta_id(ds, "v1", (root / rel).as_uri()))


def test_two_runs_find_new_unchanged_changed_deleted_and_restored(store, tmp_path):
    root = tmp_path / "imgs"
    for i in range(6):
        _write(root / "cars" / f"{i}.png", image_bytes("png", colour=(i, 0, 0)), 1_700_000_000)
    ds = _register(store, root)
    first = build_file_metas(store, ds, "v1")
    assert (first.listed, first.new, first.failed, first.deleted) == (6, 6, 0, 0)
    before = _meta(store, ds, root, "cars/0.png")
    store.upsert_file_metas([before.__class__(**{**before.__dict__, "tags_ai": ["car"]})])

    _write(root / "cars" / "0.png", image_bytes("png", (64, 48)), 1_700_000_500)   # changed
    os.utime(root / "cars" / "1.png", (1_700_000_900, 1_700_000_900))            # touched only
    (root / "cars" / "2.png").unlink()                                          # deleted
    _write(root / "new" / "n.jpg", image_bytes("jpg"))                           # new
    second = build_file_metas(store, ds, "v1")
    assert (second.new, second.changed, second.unchanged, second.deleted, second.failed) == (
        1, 1, 4, 1, 0)

    changed = _meta(store, ds, root, "cars/0.png")
    assert changed.meta_attributes["ImageWidth"] == 64
    assert changed.file_fingerprint != before.file_fingerprint
    assert changed.tags_ai == ["car"]  # the scan never drops tags; re-tagging sees the new print
    assert _meta(store, ds, root, "cars/2.png").status == "DELETED"
    assert store.count_file_metas(ds, "v1") == 6

    _write(root / "cars" / "2.png", image_bytes("png", colour=(2, 0, 0)), 1_700_000_000)
    third = build_file_metas(store, ds, "v1")
    assert (third.restored, third.unchanged, third.new) == (1, 6, 0)
    assert _meta(store, ds, root, "cars/2.png").status == "ACTIVE"


def test_unchanged_files_cost_no_write(store, tmp_path):
    root = tmp_path / "imgs"
    for i in range(5):
        _write(root / f"{i}.jpg", image_bytes("jpg"))
    ds = _register(store, root)
    build_file_metas(store, ds, "v1")
    sync = {m.file_name: m.sync_time for m in store.iter_file_metas(ds, "v1")}
    again = build_file_metas(store, ds, "v1")
    assert (again.unchanged, again.new, again.changed) == (5, 0, 0)
    assert {m.file_name: m.sync_time for m in store.iter_file_metas(ds, "v1")} == sync


def test_unchanged_files_are_not_read_at_all_and_a_touched_file_only_once(store, tmp_path):
    root = tmp_path / "imgs"
    for i in range(4):
        _write(root / f"{i}.png", image_bytes("png", colour=(i, 0, 0)), 1_700_000_000)
    ds = _register(store, root)
    first = ReadRecordingStorage(root)
    build_file_metas(store, ds, "v1", storage=first)
    assert sorted(first.reads) == [f"{i}.png" for i in range(4)]
    fingerprint = _meta(store, ds, root, "1.png").file_fingerprint

    os.utime(root / "1.png", (1_700_000_900, 1_700_000_900))  # touched: same bytes, new time
    second = ReadRecordingStorage(root)
    result = build_file_metas(store, ds, "v1", storage=second)
    assert second.reads == ["1.png"] and (result.unchanged, result.changed) == (4, 0)
    touched = _meta(store, ds, root, "1.png")
    assert touched.file_update_time == 1_700_000_900_000  # the new time is recorded
    assert touched.file_fingerprint == fingerprint

    third = ReadRecordingStorage(root)
    assert build_file_metas(store, ds, "v1", storage=third).unchanged == 4
    assert third.reads == []  # nothing read once the listing matches again


def test_all_seven_formats_are_read_from_their_headers(store, tmp_path):
    root = tmp_path / "imgs"
    for ext in FORMATS:
        _write(root / f"img.{ext}", image_bytes(ext, (33, 21)))
    _write(root / "anim.gif", animated_gif(4))
    ds = _register(store, root)
    result = build_file_metas(store, ds, "v1")
    assert (result.new, result.failed) == (8, 0)
    for ext, (fmt, mime) in FORMATS.items():
        m = _meta(store, ds, root, f"img.{ext}")
        assert (m.content_type, m.file_type, m.meta_attributes["ImageFormat"]) == (
            mime, "image", fmt)
        assert (m.meta_attributes["ImageWidth"], m.meta_attributes["ImageHeight"]) == (33, 21)
        assert m.data_size == (root / f"img.{ext}").stat().st_size
    assert _meta(store, ds, root, "anim.gif").meta_attributes["ImageFrames"] == 4


def test_bad_files_are_recorded_failures_and_the_scan_goes_on(store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "good.png", image_bytes("png"))
    _write(root / "corrupt.jpg", b"\xff\xd8\xff\xe0 garbage garbage")
    _write(root / "empty.webp", b"")
    _write(root / "truncated.png", image_bytes("png", (200, 200))[:-30])
    _write(root / "truncated.jpg", image_bytes("jpg", (200, 200))[:-40])
    _write(root / "wrong_name.jpg", image_bytes("png"))
    _write(root / "bomb.png", png_bomb())
    _write(root / "notes.txt", b"not an image")
    ds = _register(store, root)
    result = build_file_metas(store, ds, "v1")
    assert (result.new, result.failed, result.skipped) == (1, 6, 1)
    job = store.get_job(result.job_id)
    assert (job.status, job.failed_file_count, job.completed_file_count) == ("PartialFailed", 6, 1)
    reasons = {uri.rsplit("/", 1)[1]: why.split(":")[0]
               for uri, why in store.job_file_failures(result.job_id)}
    assert reasons == {
        "corrupt.jpg": "not-an-image", "empty.webp": "empty-file",
        "truncated.png": "truncated", "truncated.jpg": "truncated",
        "wrong_name.jpg": "format-mismatch", "bomb.png": "decompression-bomb",
    }
    assert store.count_file_metas(ds, "v1") == 1
    assert any("Job completed" in line for line in store.job_logs(result.job_id))


def test_max_pixels_is_configurable(store, tmp_path):
    root = tmp_path / "imgs"
    _write(root / "big.png", image_bytes("png", (100, 100)))
    ds = _register(store, root)
    result = build_file_metas(store, ds, "v1", max_pixels=5000)
    assert result.failed == 1 and "decompression-bomb" in result.failures[0][1]


def test_progress_is_reported(store, tmp_path):
    root = tmp_path / "imgs"
    for i in range(30):
        _write(root / f"{i}.bmp", image_bytes("bmp"))
    ds = _register(store, root)
    seen = []
    build_file_metas(store, ds, "v1", progress=seen.append, batch_size=7)
    assert seen and seen[-1].done == 30 and seen[-1].rate > 0
    assert "30 files (0 failed)" in str(seen[-1])


def test_logical_versions_cannot_be_scanned(store, tmp_path):
    ds = _register(store, tmp_path)
    store.create_version(ds, source_type="LOGICAL")
    with pytest.raises(Exception, match="logical version"):
        build_file_metas(store, ds, "v2")


def test_oss_scan_uses_etags_and_reads_only_headers(store, fake_oss):
    big = image_bytes("png", (1500, 1200), colour=(1, 2, 3))
    # No 0xFF byte: the noise must not hold a JPEG end marker (FF D9) that would make cut.jpg
    # look complete (it did, about one run in 60).
    noisy = os.urandom(200_000).replace(b"\xff", b"\xfe")
    big_jpg = image_bytes("jpg", (50, 40))
    big_jpg = big_jpg[:-2] + noisy + big_jpg[-2:]  # padding inside the file: > 64 KiB
    fake_oss.put("bkt", "data/a/small.png", image_bytes("png"))
    fake_oss.put("bkt", "data/a/big.png", big)
    fake_oss.put("bkt", "data/b/big.jpg", big_jpg)
    fake_oss.put("bkt", "data/b/cut.jpg", big_jpg[:-5])
    fake_oss.put("bkt", "data/readme.md", b"# hi")
    ds = _register(store, "oss://bkt/data/")
    config = OssConfig(endpoint=fake_oss.endpoint, access_key_id="ak", access_key_secret="sk")
    result = build_file_metas(store, ds, "v1", oss_config=config)
    assert (result.new, result.failed, result.skipped) == (3, 1, 1)
    assert "truncated" in result.failures[0][1] and result.failures[0][0].endswith("cut.jpg")
    m = store.get_file_meta(file_meta_id(ds, "v1", "oss://bkt/data/b/big.jpg"))
    assert m.file_fingerprint == fake_oss.buckets["bkt"]["data/b/big.jpg"][2]
    assert (m.file_dir, m.meta_attributes["ImageWidth"]) == ("b", 50)
    fake_oss.requests.clear()
    again = build_file_metas(store, ds, "v1", storage=OssStorage("oss://bkt/data/", config))
    assert (again.unchanged, again.new) == (3, 0)
    gets = [p for method, p in fake_oss.requests if method == "GET" and "list-type" not in p]
    assert all("cut.jpg" in p for p in gets)  # only the failed file is read again


def test_a_missing_or_empty_folder_never_marks_the_version_deleted(store, tmp_path):
    root = tmp_path / "mnt" / "imgs"
    for i in range(3):
        _write(root / f"{i}.png", image_bytes("png", colour=(i, 0, 0)))
    ds = _register(store, root)
    assert build_file_metas(store, ds, "v1").new == 3

    root.rename(tmp_path / "mnt" / "elsewhere")  # unmounted, or moved away
    with pytest.raises(AdapterError, match="does not exist or is not a folder") as missing:
        build_file_metas(store, ds, "v1")
    assert missing.value.is_input_error
    job = store.list_jobs(ds, "v1", "FileMetaBuild")[0]
    assert job.status == "Failed" and any("mounted" in line for line in store.job_logs(job.job_id))
    assert store.count_file_metas(ds, "v1") == 3

    root.mkdir()  # an empty mount point looks like this
    with pytest.raises(AdapterError, match="lists no files, but version v1 has 3 active"):
        build_file_metas(store, ds, "v1")
    assert store.count_file_metas(ds, "v1") == 3
    emptied = build_file_metas(store, ds, "v1", allow_empty=True)  # they really are gone
    assert emptied.deleted == 3 and store.count_file_metas(ds, "v1") == 0


def _connections(store) -> int:
    """Sessions open on the store's PostgreSQL database (0 on SQLite)."""
    if store.dialect != "postgres":
        return 0
    return store.fetchone("SELECT COUNT(*) FROM pg_stat_activity "
                          "WHERE datname = current_database()")[0]


def test_a_scan_that_wrote_many_metas_refreshes_the_planner_statistics(
        store, tmp_path, monkeypatch):
    """PostgreSQL took a freshly built 1M-file version for empty and looked each batch of the
    next scan up by walking the whole version (234 s instead of 16 s)."""
    from mmdm.adapters.metadata import store as store_module

    monkeypatch.setattr(store_module, "ANALYZE_AFTER_WRITES", 3)
    root = tmp_path / "imgs"
    for i in range(4):
        _write(root / f"{i}.png", image_bytes("png", colour=(i, 0, 0)))
    ds = _register(store, root)
    analyzed = []
    analyze = type(store).analyze_file_metas
    monkeypatch.setattr(type(store), "analyze_file_metas",
                        lambda self: analyzed.append(1) or analyze(self))
    assert build_file_metas(store, ds, "v1").new == 4
    assert analyzed == [1]
    assert build_file_metas(store, ds, "v1").unchanged == 4
    assert analyzed == [1]  # nothing written: nothing to refresh
    _write(root / "4.png", image_bytes("png", colour=(4, 0, 0)))
    assert build_file_metas(store, ds, "v1").new == 1
    assert analyzed == [1]  # fewer writes than the threshold


def test_a_failed_write_fails_the_scan_before_any_file_is_marked_deleted(
        store, tmp_path, monkeypatch):
    """On PostgreSQL a thread writes each batch on a connection of its own while the next is
    built: its error must still stop the scan, and the files the scan never reached must not
    read as vanished."""
    root = tmp_path / "imgs"
    for i in range(8):
        _write(root / f"{i}.png", image_bytes("png", colour=(i, 0, 0)), 1_700_000_000)
    ds = _register(store, root)
    assert build_file_metas(store, ds, "v1", batch_size=2).new == 8
    for i in range(8):  # every file changed: every batch writes
        _write(root / f"{i}.png", image_bytes("png", colour=(i, 9, 0)), 1_700_000_100)
    sessions = _connections(store)

    store_class, writes = type(store), []
    upsert = store_class.upsert_file_metas

    def fail_third(self, metas, **kw):
        writes.append(len(metas))
        if len(writes) == 3:
            raise RuntimeError("disk full")
        return upsert(self, metas, **kw)

    monkeypatch.setattr(store_class, "upsert_file_metas", fail_third)
    with pytest.raises(RuntimeError, match="disk full"):
        build_file_metas(store, ds, "v1", batch_size=2)
    monkeypatch.undo()
    assert len(writes) == 3  # the scan stopped at the failed batch: no write after it
    job = store.list_jobs(ds, "v1", "FileMetaBuild")[0]
    assert job.status == "Failed"
    assert any("disk full" in line for line in store.job_logs(job.job_id))
    metas = list(store.iter_file_metas(ds, "v1"))
    assert [m.status for m in metas] == ["ACTIVE"] * 8
    # The two batches before the failure were committed; the rest keep their old content.
    assert sorted(m.file_update_time for m in metas) == [1_700_000_000_000] * 4 + [
        1_700_000_100_000] * 4
    assert _connections(store) == sessions  # the writer's connection was closed

    again = build_file_metas(store, ds, "v1", batch_size=2)  # the next scan finishes the job
    assert (again.changed, again.unchanged, again.deleted) == (4, 4, 0)


def test_a_first_build_neither_looks_up_nor_lists_sizes_and_later_scans_do(
        store, tmp_path, monkeypatch):
    """A first build reads every file: the lookups and the listing's sizes and times (a stat
    a file) would be spent for nothing. Its metas take them from the files as read."""
    root = tmp_path / "imgs"
    for i in range(5):
        _write(root / f"{i}.png", image_bytes("png", colour=(i, 0, 0)), 1_700_000_000 + i)
    ds = _register(store, root)
    lookups, listings = [], []
    lookup = type(store).scan_lookup
    monkeypatch.setattr(type(store), "scan_lookup",
                        lambda self, *a: lookups.append(a) or lookup(self, *a))
    storage = ReadRecordingStorage(root)
    listing = storage.list
    monkeypatch.setattr(storage, "list", lambda **kw: listings.append(kw) or listing(**kw))
    assert build_file_metas(store, ds, "v1", storage=storage, batch_size=2).new == 5
    assert lookups == [] and listings == [{"sizes": False}]
    for i in range(5):
        m = _meta(store, ds, root, f"{i}.png")
        assert (m.data_size, m.file_update_time, m.file_create_time) == (
            (root / f"{i}.png").stat().st_size, (1_700_000_000 + i) * 1000,
            (1_700_000_000 + i) * 1000)
    (root / "0.png").unlink()
    again = build_file_metas(store, ds, "v1", storage=storage, batch_size=2)
    assert len(lookups) == 2 and listings[1:] == [{"sizes": True}]  # 4 files, 2 batches
    assert (again.new, again.unchanged, again.deleted) == (0, 4, 1)
