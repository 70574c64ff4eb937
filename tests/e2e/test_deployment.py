"""mmdm in a real Airflow: DAGs triggered through the REST API and run by the scheduler's
executor in task processes, the Asset-triggered training DAG, four shards at once, and the
gallery inside Airflow's api-server in a browser, while those runs go on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import PIPELINE, SHARDED, Workspace
from .deployment import PASSWORD, REPO, Deployment

CHROMIUM = os.environ.get("MMDM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
# Where CI keeps the screenshot of the gallery inside Airflow.
ARTIFACTS = Path(os.environ.get("MMDM_E2E_ARTIFACTS", REPO / ".ci" / "artifacts"))
VECTOR_TABLE = "mmdm_file_vectors"


def _wait(dep: Deployment, dag_id: str, run_id: str) -> None:
    run = dep.wait_for_run(dag_id, run_id)
    assert run["state"] == "success", dep.explain_failure(dag_id, run_id)


def _jobs(ws: Workspace, dataset: str, action: str):
    ds = ws.store.get_dataset(dataset)
    return [j for j in ws.store.list_jobs(ds.dataset_id, "v1") if j.job_action == action]


def _active_ids(ws: Workspace, dataset: str) -> set[str]:
    ds = ws.store.get_dataset(dataset)
    return {m.file_meta_id for m in ws.store.iter_file_metas(ds.dataset_id, "v1")
            if m.status == "ACTIVE"}


def _vectors(ws: Workspace, dataset: str) -> tuple[int, int]:
    ds = ws.store.get_dataset(dataset)
    total, distinct = ws.store.fetchone(
        f"SELECT COUNT(*), COUNT(DISTINCT file_meta_id) FROM {VECTOR_TABLE} "
        "WHERE dataset_id = ?", (ds.dataset_id,))
    return int(total), int(distinct)


def _tag_sets(ws: Workspace, dataset: str) -> list[tuple[str, str]]:
    ds = ws.store.get_dataset(dataset)
    return ws.store.fetchall(
        "SELECT f.file_meta_id, s.job_id FROM file_tag_sets s JOIN file_metas f "
        "ON f.pk = s.file_pk WHERE f.dataset_id = ?", (ds.dataset_id,))


def _show_thumbnails(frame, dataset_id: str, count: int) -> None:
    """Pick the dataset (built before the runs, so it has its files whatever they are doing)
    and wait until its ``count`` cards show, every thumbnail decoded and none broken (the
    previous dataset's cards are gone)."""
    settled = ("() => document.querySelector('#dataset').options.length >= 2 && "
               "/matches/.test(document.querySelector('#status').textContent) && "
               "!document.querySelector('#status').textContent.includes('…')")
    frame.wait_for_function(settled)  # the page's own first search is over: none follows ours
    if frame.eval_on_selector("#dataset", "e => e.value") != dataset_id:
        # Only then: selecting the shown dataset again would start a search while its old
        # cards still stand, and they would pass the check below.
        frame.select_option("#dataset", value=dataset_id)
    # The search has settled, and every thumbnail has decoded.
    frame.wait_for_function(
        """([id, n]) => { const status = document.querySelector('#status').textContent;
           const imgs = [...document.querySelectorAll('.card img')];
           return !status.includes('…') && /matches/.test(status) && imgs.length === n
               && imgs.every(i => i.src.includes(`/datasets/${id}/`)
                                  && i.complete && i.naturalWidth > 0); }""",
        arg=[dataset_id, count])


def _gallery_frame(page, timeout: float = 30):
    """The iframe in which Airflow's UI shows the gallery (the UI mirrors the frame's path
    into its own URL, so the main frame's URL names the gallery too)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame is not page.main_frame and "/mmdm/gallery" in frame.url:
                return frame
        page.wait_for_timeout(200)
    raise TimeoutError(f"no gallery frame in {[f.url for f in page.frames]}")


def test_gallery_inside_airflow_while_runs_go_on(deployment, workspace, runs):
    """Logged out, the gallery sends the browser to Airflow's login and back; thumbnails and
    a TIFF's full-size view load under the plugin's prefix; a DSL search and an export work."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright import sync_api

    deployment.wait_for_dag("mmdm_dataset_job")  # the gallery's export request runs in it
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{deployment.base_url}/mmdm/gallery")
        page.wait_for_selector("input[name=username]")
        assert "/auth/login" in page.url
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/mmdm/gallery**")

        sharded_id = workspace.store.get_dataset(SHARDED).dataset_id
        _show_thumbnails(page, sharded_id, workspace.images)
        srcs = page.eval_on_selector_all(".card img", "els => els.map(e => e.src)")
        assert all("/mmdm/api/v1/" in s and "/thumbnails/" in s for s in srcs), srcs[:3]

        # The same page as Airflow's UI shows it: the plugin's nav entry, under Airflow's menu.
        page.goto(f"{deployment.base_url}/plugin/mmdm")
        page.wait_for_selector("iframe")
        _show_thumbnails(_gallery_frame(page), sharded_id, workspace.images)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"gallery-in-airflow-{deployment.executor}.png"))
        page.goto(f"{deployment.base_url}/mmdm/gallery")
        _show_thumbnails(page, sharded_id, workspace.images)

        page.fill("#q-dsl", "FileName:'.tiff'")
        page.click("#search")
        page.wait_for_function(
            "() => /^1 match/.test(document.querySelector('#status').textContent)")
        page.locator(".card img").first.click()
        page.wait_for_selector("#viewer[open]")
        page.wait_for_function("() => document.querySelector('#viewer-img').naturalWidth > 0")
        assert "/mmdm/api/v1/" in page.get_attribute("#viewer-img", "src")
        page.click("#viewer-close")

        page.click("#clear-search")
        page.fill("#q-dsl", "FileDir:'red' OR FileDir:'green'")
        page.click("#search")
        page.wait_for_function(
            "() => /^6 matches/.test(document.querySelector('#status').textContent)")
        page.click("#export")
        # The export runs as a task of the job DAG, queued on the executor beside the
        # pipeline runs going on: it takes a scheduler loop or two, not a request's time.
        # Wait for either outcome, so a failed export shows its error, not a timeout.
        try:
            page.wait_for_function(
                "() => /rows exported|Export failed/.test("
                "document.querySelector('#export-status').textContent)", timeout=240_000)
        except Exception as exc:  # still waiting: say where the job stands
            jobs = [(j.job_id, j.status) for j in _jobs(workspace, SHARDED, "FileMetaExport")]
            raise AssertionError(f"the export did not end in 240 s: "
                                 f"{page.text_content('#export-status')!r}, jobs {jobs}") from exc
        assert "Succeeded: 6 rows exported" in page.text_content("#export-status")
        browser.close()
    exports = _jobs(workspace, SHARDED, "FileMetaExport")
    assert [j.status for j in exports] == ["Succeeded"]
    assert exports[0].result["RowCount"] == 6
    # The gallery's job request ran as a run of the job DAG, on the deployment's executor.
    run_id = f"mmdm__{exports[0].job_id}"
    assert any(f"mmdm_dataset_job/{run_id}" in line
               for line in workspace.store.job_logs(exports[0].job_id))
    assert deployment.wait_for_run("mmdm_dataset_job", run_id)["state"] == "success"
    [ti] = deployment.task_instances("mmdm_dataset_job", run_id)
    assert ti["task_id"] == "run_job" and ti["state"] == "success"


def test_pipeline_tags_indexes_exports_and_triggers_training(deployment, workspace, runs):
    dag_id = "mmdm_dataset_pipeline"
    _wait(deployment, dag_id, runs[dag_id])
    files = _active_ids(workspace, PIPELINE)
    assert len(files) == workspace.images

    tagging = _jobs(workspace, PIPELINE, "IntelligentTag")
    assert [(j.status, j.completed_file_count) for j in tagging] == [
        ("Succeeded", workspace.images)]
    tag_sets = _tag_sets(workspace, PIPELINE)
    assert sorted(f for f, _ in tag_sets) == sorted(files)  # each file tagged once
    assert {job for _, job in tag_sets} == {tagging[0].job_id}
    assert _vectors(workspace, PIPELINE) == (workspace.images, workspace.images)

    export = deployment.xcom(dag_id, runs[dag_id], "export")
    assert export["RowCount"] == workspace.images
    assert workspace.store.get_job(export["DatasetJobId"]).status == "Succeeded"

    # The export's Asset event schedules the training DAG, which loads every exported row.
    run_id = _training_run(deployment)
    _wait(deployment, "mmdm_training", run_id)
    loaded = deployment.xcom("mmdm_training", run_id, "load_export")
    assert loaded["ManifestUri"] == export["ManifestUri"]
    assert loaded["Rows"] == loaded["ExpectedRows"] == workspace.images
    assert loaded["FirstImageSize"][0] > 0


def _training_run(dep: Deployment, timeout: float = 120) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dep.wait_for_dag("mmdm_training")
        found = dep.api("GET", "/dags/mmdm_training/dagRuns")["dag_runs"]
        if found:
            assert len(found) == 1 and found[0]["run_type"] == "asset_triggered", found
            return str(found[0]["dag_run_id"])
        time.sleep(2)
    raise TimeoutError(f"the export's Asset did not trigger mmdm_training\n{dep.logs()}")


def test_four_shards_split_the_version(deployment, workspace, runs):
    dag_id = "mmdm_sharded_tagging"
    _wait(deployment, dag_id, runs[dag_id])
    files = _active_ids(workspace, SHARDED)

    for action in ("IntelligentTag", "SemanticIndex"):
        jobs = _jobs(workspace, SHARDED, action)
        assert sorted(tuple(j.job_spec["shard"]) for j in jobs) == [(i, 4) for i in range(4)]
        assert {j.status for j in jobs} == {"Succeeded"}
        done = [workspace.store.job_done_keys(j.job_id) for j in jobs]
        assert sorted(k for keys in done for k in keys) == sorted(files)  # no overlap, no gap
    assert sorted(f for f, _ in _tag_sets(workspace, SHARDED)) == sorted(files)
    assert _vectors(workspace, SHARDED) == (len(files), len(files))

    tis = deployment.task_instances(dag_id, runs[dag_id])
    assert sorted((t["task_id"], t["map_index"]) for t in tis if t["map_index"] >= 0) == sorted(
        (task, i) for task in ("smart_tag", "semantic_index") for i in range(4))
    if deployment.executor == "CeleryExecutor":  # each shard ran once, on either worker
        ran = deployment.worker_tasks()
        assert sorted(ran) == ["worker1", "worker2"] and all(ran.values()), ran
        shards = sorted(p for paths in ran.values() for p in paths
                        if dag_id in p and "map_index=" in p)
        assert len(shards) == len(set(shards)) == 8, shards
