"""Operators tell the truth about their jobs: a Failed job fails the task, a PartialFailed one
fails it above ``max_failed_fraction``, and the task log names the failed files."""

from __future__ import annotations

import pytest

from tests.adapters.imagefiles import image_bytes


def test_partial_failures_pass_within_the_limit_and_fail_above_it(airflow_db, tmp_path, capfd):
    from airflow.sdk.exceptions import AirflowException

    from mmdm.airflow_plugin.hooks.metadata import MetadataStoreHook
    from mmdm.airflow_plugin.operators.build import FileMetaBuildOperator

    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(9):
        (root / f"{i}.png").write_bytes(image_bytes("png", colour=(i, 0, 0)))
    (root / "broken.jpg").write_bytes(b"not an image at all")
    store = MetadataStoreHook().get_store()
    ds = store.create_dataset("outcomes", root.as_uri())
    store.create_version(ds.dataset_id)

    out = FileMetaBuildOperator(task_id="lenient", dataset="outcomes").execute({})
    assert (out["new"], out["failed"]) == (9, 1)  # 1 of 10 failed: not more than 10 %
    logged = [line for line in capfd.readouterr().out.splitlines() if "broken.jpg" in line]
    assert logged and "not-an-image" in logged[0] and "warning" in logged[0]

    strict = FileMetaBuildOperator(task_id="strict", dataset="outcomes", max_failed_fraction=0.05)
    with pytest.raises(AirflowException, match=r"FileMetaBuild job .* ended PartialFailed: 1 of "
                                               r"10 files failed \(more than max_failed_fraction"
                                               r"=0.05\); first reason: not-an-image"):
        strict.execute({})
