"""ImportOperator fills a logical version from a query over another version or from an
export's manifest, as the README's operator table says."""

from __future__ import annotations

import pytest

from tests.adapters.imagefiles import image_bytes


def test_import_operator_makes_a_logical_version_from_a_query_and_from_a_manifest(
        airflow_db, tmp_path):
    from airflow.sdk.exceptions import AirflowException

    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook
    from mmdm.airflow_plugin.operators.build import FileMetaBuildOperator
    from mmdm.airflow_plugin.operators.export import ExportOperator, ImportOperator

    root = tmp_path / "imgs"
    for i in range(6):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"{i}.png").write_bytes(image_bytes("png", colour=(i, 0, 0)))
    store = MetadataStoreHook().get_store()
    ds = store.create_dataset("import-op", root.as_uri())
    store.create_version(ds.dataset_id)
    FileMetaBuildOperator(task_id="build", dataset="import-op").execute({})
    subset = store.create_version(ds.dataset_id, source_type="LOGICAL")
    copied = store.create_version(ds.dataset_id, source_type="LOGICAL")

    ImportOperator(task_id="from_query", dataset="import-op",
                         version=subset.version_name, source_version="v1",
                         query="FileDir:'d0'").execute({})
    names = sorted(m.file_name for m in store.iter_file_metas(ds.dataset_id, subset.version_name))
    assert names == ["0.png", "2.png", "4.png"]

    export = ExportOperator(task_id="export", dataset="import-op", query="FileDir:'d1'",
                            export_dir=str(tmp_path / "out")).execute({"outlet_events": {}})
    ImportOperator(task_id="from_manifest", dataset="import-op", version=copied.version_name,
                   manifest_uri=export["ManifestUri"]).execute({})
    names = sorted(m.file_name for m in store.iter_file_metas(ds.dataset_id, copied.version_name))
    assert names == ["1.png", "3.png", "5.png"]

    # A bad query fails the task for good, with the DSL error's position and caret.
    with pytest.raises(AirflowException, match=r"1:9: query ends too early"):
        ImportOperator(task_id="bad", dataset="import-op", version=subset.version_name,
                       source_version="v1", query="FileDir:").execute({})
