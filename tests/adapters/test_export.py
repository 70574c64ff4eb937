"""Export -> import -> loader round trip, filteredAttributes, OSS, checksums."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.export import (
    MANIFEST_NAME,
    ExportDataset,
    export_file_metas,
    import_file_metas,
    iter_export_rows,
)
from mmdm.adapters.export.rows import parse_attributes
from mmdm.adapters.ids import file_meta_id
from mmdm.adapters.metadata import FileMeta
from mmdm.adapters.scan import build_file_metas
from mmdm.adapters.search import SearchService
from mmdm.adapters.storage import LocalStorage, OssConfig
from mmdm.adapters.timeutil import to_iso
from mmdm.query import parse
from tests.adapters.imagefiles import image_bytes

WHEN = datetime(2025, 6, 18, 12, 23, 30, tzinfo=timezone.utc)


@pytest.fixture
def built(store, tmp_path):
    root = tmp_path / "imgs"
    for i in range(7):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"{i}.png").write_bytes(image_bytes("png", (20 + i, 10)))
    ds = store.create_dataset("src", root.as_uri())
    store.create_version(ds.dataset_id)
    build_file_metas(store, ds.dataset_id, "v1")
    metas = list(store.iter_file_metas(ds.dataset_id, "v1"))
    store.upsert_file_metas([m.__class__(**{**m.__dict__, "tags_ai": ["car", f"n{i}"],
                                            "tags_user": ["mine"] if i % 2 else [],
                                            "tags_user_delete_ai": ["car"] if i == 3 else [],
                                            "comment": f"c{i}", "description": "a Ω car"})
                             for i, m in enumerate(metas)])
    return ds, list(store.iter_file_metas(ds.dataset_id, "v1"))


def test_round_trip_preserves_every_row_and_attribute(store, built, tmp_path):
    ds, metas = built
    result = export_file_metas(store, ds.dataset_id, "v1", query="Tags.all='n1' OR HAS Description",
                               export_dir_uri=str(tmp_path / "exports"), rows_per_file=3,
                               now=WHEN)
    assert result.folder_uri.endswith(f"/{ds.dataset_id}-v1-2025-06-18-12-23-30")
    assert result.manifest_uri.endswith("/" + MANIFEST_NAME) and result.row_count == 7
    manifest = yaml.safe_load((tmp_path / "exports" / f"{ds.dataset_id}-v1-2025-06-18-12-23-30"
                               / MANIFEST_NAME).read_text())
    assert [f["rows"] for f in manifest["files"]] == [3, 3, 1]
    assert manifest["query"]["dsl"] == "Tags.all='n1' OR HAS Description"
    assert manifest["rowCount"] == 7

    target = store.create_version(ds.dataset_id, source_type="LOGICAL")
    out = import_file_metas(store, ds.dataset_id, target.version_name,
                            manifest_uri=result.manifest_uri)
    assert out["RowCount"] == 7
    imported = {m.uri: m for m in store.iter_file_metas(ds.dataset_id, target.version_name)}
    for m in metas:
        got = imported[m.uri]
        assert (got.file_name, got.file_dir, got.data_size, got.file_fingerprint,
                got.content_type, got.meta_attributes, got.comment, got.description,
                got.tags_ai, got.tags_user, got.tags_user_delete_ai, got.tags_all,
                got.file_update_time) == (
            m.file_name, m.file_dir, m.data_size, m.file_fingerprint, m.content_type,
            m.meta_attributes, m.comment, m.description, m.tags_ai, m.tags_user,
            m.tags_user_delete_ai, m.tags_all, m.file_update_time)
        assert got.file_meta_id != m.file_meta_id  # ids belong to the new version

    loader = ExportDataset(result.folder_uri)
    assert len(loader) == 7
    by_uri = {m.uri: m for m in metas}
    for i in range(len(loader)):
        sample = loader[i]
        meta = by_uri[sample["uri"]]
        assert sample["tags"] == meta.tags_all
        assert sample["image"].size == (meta.meta_attributes["ImageWidth"], 10)
    assert [s["uri"] for s in loader] == [m.uri for m in metas]
    assert loader[-1]["uri"] == metas[-1].uri
    with pytest.raises(IndexError):
        loader[7]


def test_filtered_attributes_keep_uri_and_only_what_was_asked(store, built, tmp_path):
    ds, metas = built
    result = export_file_metas(store, ds.dataset_id, "v1", export_dir_uri=tmp_path.as_uri(),
                               filtered_attributes="FileName,Tags.ai",
                               now=WHEN)
    line = json.loads(next(open(tmp_path / f"{ds.dataset_id}-v1-2025-06-18-12-23-30"
                                / "filemetas-00000.jsonl")))
    assert set(line) == {"Uri", "FileName", "Tags"} and set(line["Tags"]) == {"ai"}
    rows = ExportDataset(result.manifest_uri, load_images=False)
    assert rows[3]["tags"] == ["car", "n3"]  # the removal list was not exported: ai as is
    with pytest.raises(AdapterError, match="unknown filteredAttributes"):
        export_file_metas(store, ds.dataset_id, "v1", export_dir_uri=str(tmp_path),
                          filtered_attributes="FileName,Password")


def test_import_modes_and_checks(store, built, tmp_path):
    ds, metas = built
    first, rest = metas[:3], metas[3:]
    ids = ",".join(m.file_meta_id for m in first)
    result = export_file_metas(store, ds.dataset_id, "v1", query={"DatasetFileMetaIds": ids},
                               export_dir_uri=str(tmp_path), now=WHEN)
    target = store.create_version(ds.dataset_id, source_type="LOGICAL").version_name
    rest_query = parse(" OR ".join(f"DatasetFileMetaId='{m.file_meta_id}'" for m in rest))
    import_file_metas(store, ds.dataset_id, target, source_rows=iter_export_rows(
        SearchService(store), ds.dataset_id, "v1", rest_query))
    import_file_metas(store, ds.dataset_id, target, manifest_uri=result.manifest_uri)
    assert store.count_file_metas(ds.dataset_id, target) == 7
    import_file_metas(store, ds.dataset_id, target, manifest_uri=result.manifest_uri,
                      import_mode="replace")
    assert store.count_file_metas(ds.dataset_id, target) == 3
    assert store.count_file_metas(ds.dataset_id, target, status="DELETED") == 4
    with pytest.raises(AdapterError, match="not a logical version"):
        import_file_metas(store, ds.dataset_id, "v1", manifest_uri=result.manifest_uri)
    part = next((tmp_path / f"{ds.dataset_id}-v1-2025-06-18-12-23-30").glob("*.jsonl"))
    part.write_text(part.read_text().replace("c0", "c9"))
    with pytest.raises(AdapterError, match="checksum"):
        import_file_metas(store, ds.dataset_id, target, manifest_uri=result.manifest_uri)
    jobs = store.list_jobs(ds.dataset_id, target, "FileMetaImport")
    assert sorted(j.status for j in jobs) == ["Failed", *["Succeeded"] * 3]


def test_a_large_import_refreshes_the_planner_statistics(store, built, monkeypatch):
    """As a large scan does: a logical version filled with many rows is searched next."""
    from mmdm.adapters.metadata import store as store_module

    ds, metas = built
    monkeypatch.setattr(store_module, "ANALYZE_AFTER_WRITES", 5)
    analyzed = []
    analyze = type(store).analyze_file_metas
    monkeypatch.setattr(type(store), "analyze_file_metas",
                        lambda self: analyzed.append(1) or analyze(self))
    target = store.create_version(ds.dataset_id, source_type="LOGICAL").version_name

    def rows(some):
        query = parse(" OR ".join(f"DatasetFileMetaId='{m.file_meta_id}'" for m in some))
        return iter_export_rows(SearchService(store), ds.dataset_id, "v1", query)

    assert import_file_metas(store, ds.dataset_id, target, source_rows=rows(metas[:4]))[
        "RowCount"] == 4
    assert analyzed == []
    assert import_file_metas(store, ds.dataset_id, target, source_rows=rows(metas))[
        "RowCount"] == 7
    assert analyzed == [1]


def test_export_to_oss_and_load_from_it(store, built, fake_oss, tmp_path):
    ds, metas = built
    config = OssConfig(endpoint=fake_oss.endpoint, access_key_id="ak", access_key_secret="sk")
    fake_oss.put("exports", "keep.txt", b"")
    result = export_file_metas(store, ds.dataset_id, "v1", oss_config=config,
                               export_dir_uri="oss://exports/runs/", now=WHEN)
    assert result.manifest_uri == (f"oss://exports/runs/{ds.dataset_id}-v1-2025-06-18-12-23-30/"
                                   + MANIFEST_NAME)
    loader = ExportDataset(result.manifest_uri, oss_config=config, cache_dir=str(tmp_path / "c"))
    assert len(loader) == 7 and loader[0]["image"] is not None
    # OSS has no folders: the claim is a PUT with x-oss-forbid-overwrite.
    again = export_file_metas(store, ds.dataset_id, "v1", oss_config=config, query="FileDir:'d1'",
                              export_dir_uri="oss://exports/runs/", now=WHEN)
    assert again.manifest_uri == (f"oss://exports/runs/{ds.dataset_id}-v1-2025-06-18-12-23-30-2/"
                                  + MANIFEST_NAME)
    assert len(ExportDataset(again.manifest_uri, oss_config=config)) == 3
    assert len(ExportDataset(result.manifest_uri, oss_config=config)) == 7


EDGE_TIMES = [None, 0, -1, 951_782_400_123, 1_736_692_561_999, 253_402_300_799_999]


def _expected_line(m: FileMeta, attributes: tuple[str, ...]) -> dict:
    """What a line must hold, written out independently of the SQL that renders it."""
    values = {"Uri": m.uri, "DatasetFileMetaId": m.file_meta_id, "FileName": m.file_name,
              "FileDir": m.file_dir, "DataSize": m.data_size, "FileType": m.file_type,
              "ContentType": m.content_type, "Comment": m.comment,
              "Description": m.description, "MetaAttributes": m.meta_attributes,
              "FileFingerPrint": m.file_fingerprint,
              "FileCreateTime": to_iso(m.file_create_time),
              "FileUpdateTime": to_iso(m.file_update_time)}
    groups = {"Tags.ai": ("ai", m.tags_ai), "Tags.user": ("user", m.tags_user),
              "Tags.user-delete-ai-tags": ("user-delete-ai-tags", m.tags_user_delete_ai),
              "Tags.all": ("all", m.tags_all)}
    out: dict = {}
    for name in attributes:
        if name in groups:
            out.setdefault("Tags", {})[groups[name][0]] = groups[name][1]
        else:
            out[name] = values[name]
    return out


@pytest.mark.parametrize("filtered", [None, "Tags.ai,FileName,Tags.all,FileUpdateTime"])
def test_lines_rendered_by_the_database_hold_every_value_exactly(store, tmp_path, filtered):
    ds = store.create_dataset("edge", "file:///edge/")
    store.create_version(ds.dataset_id)
    metas = [FileMeta(
        file_meta_id(ds.dataset_id, "v1", f"file:///edge/{i}.jpg"), ds.dataset_id, "v1",
        f"file:///edge/{i}.jpg", f"{i}.jpg", "edge/ünï" if i % 2 else "",
        data_size=None if i == 0 else 2**40 + i, file_fingerprint=f"fp{i}",
        file_create_time=t, file_update_time=EDGE_TIMES[-1 - i], file_type="image",
        content_type=None if i == 1 else "image/jpeg",
        meta_attributes={} if i == 2 else {"ImageWidth": 640 + i, "Exif": {"Make": "Ω\"\\"}},
        comment=None if i % 3 else f"c\n{i}", description=None if i == 4 else "a \"Ω\" car\t\\",
        tags_ai=["car", "雪"] if i % 2 else [], tags_user=["it's", "x"] if i == 3 else [],
        tags_user_delete_ai=["car"] if i == 3 else [])
        for i, t in enumerate(EDGE_TIMES)]
    store.upsert_file_metas(metas)
    result = export_file_metas(store, ds.dataset_id, "v1", export_dir_uri=str(tmp_path),
                               filtered_attributes=filtered, now=WHEN)
    attributes = parse_attributes(filtered)
    folder = tmp_path / Path(result.folder_uri).name
    lines = [json.loads(line) for part in sorted(folder.glob("*.jsonl"))
             for line in part.read_text(encoding="utf-8").splitlines()]
    stored = {m.uri: m for m in store.iter_file_metas(ds.dataset_id, "v1")}
    assert len(lines) == len(metas)
    for line in lines:
        expected = _expected_line(stored[line["Uri"]], attributes)
        assert line == expected
        assert list(line) == list(expected)  # the attributes' order
        assert list(line.get("Tags", {})) == list(expected.get("Tags", {}))


class _RecordingStorage(LocalStorage):
    """The real local storage, recording its writes; optionally failing the n-th one."""

    writes: list[str] = []
    fail_at: int | None = None

    def write(self, key, data, content_type=None, *, exclusive=False):
        if len(self.writes) == self.fail_at:
            raise OSError(f"disk full writing {key}")
        self.writes.append(key)
        return super().write(key, data, content_type, exclusive=exclusive)


@pytest.fixture
def recording(monkeypatch):
    from mmdm.adapters.export import exporter

    _RecordingStorage.writes, _RecordingStorage.fail_at = [], None
    monkeypatch.setattr(exporter, "open_storage", lambda uri, _config=None: _RecordingStorage(uri))
    return _RecordingStorage


def test_the_manifest_is_written_last(store, built, tmp_path, recording):
    ds, metas = built
    result = export_file_metas(store, ds.dataset_id, "v1", export_dir_uri=str(tmp_path / "out"),
                               rows_per_file=3, now=WHEN)
    parts = ["filemetas-00000.jsonl", "filemetas-00001.jsonl", "filemetas-00002.jsonl"]
    # The first part is created empty to claim the folder, then written with its rows.
    assert recording.writes == [parts[0], *parts, MANIFEST_NAME]
    assert result.row_count == len(metas) == 7


def test_an_export_that_dies_midway_leaves_no_manifest(store, built, tmp_path, recording):
    """A reader waits for the manifest; a crash before it must not leave one to find."""
    from mmdm.adapters.export.job import run_export_job

    ds, _ = built
    recording.fail_at = 2  # the second part (after the claim and the first part)
    with pytest.raises(OSError, match="disk full"):
        run_export_job(store, ds.dataset_id, "v1", export_dir_uri=str(tmp_path / "out"),
                       rows_per_file=3, now=WHEN)
    folder = next((tmp_path / "out").iterdir())
    assert [p.name for p in folder.iterdir()] == ["filemetas-00000.jsonl"]
    job = store.list_jobs(ds.dataset_id, "v1", "FileMetaExport")[0]
    assert job.status == "Failed" and "disk full" in job.result["error"]


def test_exports_in_the_same_second_get_their_own_folders(store, built, tmp_path):
    """PAI names the folder by the second; a second export of the version in that second
    (or many at once) takes ``-2``, ``-3`` ... and every manifest lists only its own rows."""
    from concurrent.futures import ThreadPoolExecutor

    ds, metas = built
    queries = ["FileDir:'d0'", "FileDir:'d1'", "", "FileName:'3.png'"]

    def export(query: str):
        return export_file_metas(store, ds.dataset_id, "v1", export_dir_uri=str(tmp_path),
                                 query=query, now=WHEN)

    with ThreadPoolExecutor(len(queries)) as pool:
        results = list(pool.map(export, queries))
    base = f"{ds.dataset_id}-v1-2025-06-18-12-23-30"
    assert sorted(r.folder_uri.rsplit("/", 1)[1] for r in results) == [
        base, f"{base}-2", f"{base}-3", f"{base}-4"]
    expected = {"FileDir:'d0'": 4, "FileDir:'d1'": 3, "": 7, "FileName:'3.png'": 1}
    for query, result in zip(queries, results):
        loaded = ExportDataset(result.manifest_uri)
        assert len(loaded) == result.row_count == expected[query], query
        assert len({row["uri"] for row in (loaded[i] for i in range(len(loaded)))}) == len(loaded)


def test_an_export_after_its_tagging_job_was_deleted_names_what_it_still_knows(
        store, built, tmp_path):
    """DeleteDatasetJob keeps the tags a job wrote: an export of them still runs; the manifest
    lists the tag definitions of the jobs that remain and names every source job."""
    from mmdm.adapters.jobs import run_tagging_job
    from mmdm.adapters.models import LOCAL_TAG_DEFINITION, LocalPixelTagger

    ds, _ = built
    store.create_prompt("pixels", LOCAL_TAG_DEFINITION.tags,
                        guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)
    kept = run_tagging_job(store, ds.dataset_id, "v1", tagger=LocalPixelTagger(),
                           prompt="pixels", mode="Full").job_id
    store.execute("UPDATE file_metas SET tag_job_id = 'dsjob-gone' WHERE file_name = '0.png'")
    result = export_file_metas(store, ds.dataset_id, "v1", export_dir_uri=str(tmp_path), now=WHEN)
    manifest = yaml.safe_load(Path(result.manifest_uri.removeprefix("file://")).read_text())
    assert result.row_count == 7
    assert set(manifest["sourceJobs"]) >= {kept, "dsjob-gone"}
    assert [d["tagJobId"] for d in manifest["tagDefinitions"]] == [kept]
