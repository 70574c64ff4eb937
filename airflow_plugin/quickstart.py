"""``mmdm quickstart``: the whole pipeline through Airflow on embedded defaults.

Generates sample images, registers them, runs the ``mmdm_dataset_pipeline`` DAG (build → tag →
index → export) and the Asset-scheduled ``mmdm_training`` DAG with ``dag.test()``, then shows a
DSL search and an image-to-image search. Embedded defaults: PostgreSQL with pgvector (metadata
and vectors, one server shared by every process), the offline local model, a local folder — all
inside the workspace folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mmdm.adapters.errors import NotFoundError
from mmdm.adapters.models import LOCAL_TAG_DEFINITION
from mmdm.adapters.samples import generate_samples

from .cli.output import out

PROMPT = "pixel-statistics"
DATASET = "quickstart-samples"


def _dags_folder() -> Path:
    folder = Path(__file__).resolve().parents[1] / "dags"
    if not folder.is_dir():
        raise FileNotFoundError(f"no dags folder at {folder}: run the quickstart from a clone "
                                "installed with `pip install -e .`")
    return folder


def configure_airflow(workspace: Path) -> None:
    """Airflow settings for an in-process run; must happen before Airflow is imported."""
    home = workspace / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_dags_folder()))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # keep the summary readable
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    os.environ["MMDM_WORKSPACE"] = str(workspace)


def prepare(workspace: Path, per_scene: int) -> None:
    """Sample images, the dataset and the local model's tag definition."""
    from .hooks.metadata import MetadataStoreHook

    samples = workspace / "samples"
    if not samples.exists():
        made = generate_samples(samples, per_scene=per_scene)
        out(f"Generated {made['images']} sample images (+{made['other']} other files) "
            f"in {samples}")
    store = MetadataStoreHook().get_store()
    try:
        store.get_dataset(DATASET)
    except NotFoundError:
        ds = store.create_dataset(DATASET, samples.as_uri(), description="Generated images")
        store.create_version(ds.dataset_id)
    try:
        store.get_prompt(PROMPT)
    except NotFoundError:
        store.create_prompt(PROMPT, LOCAL_TAG_DEFINITION.tags,
                            guide_prompt=LOCAL_TAG_DEFINITION.guide_prompt)


def run_dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.db import upgradedb

    upgradedb()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    pipeline = bag.get_dag("mmdm_dataset_pipeline")
    run = pipeline.test(run_conf={"dataset": DATASET, "version": "v1", "mode": "Increment"})
    training = bag.get_dag("mmdm_training").test()
    return {"pipeline": str(run.state), "training": str(training.state)}


def report(workspace: Path) -> None:
    from mmdm.query import parse

    from mmdm.adapters.search import SearchService

    from .hooks.metadata import MetadataStoreHook
    from .hooks.models import embedder_for
    from .hooks.vectors import vector_store_for

    store = MetadataStoreHook().get_store()
    ds = store.get_dataset(DATASET)
    jobs = {j.job_action: j for j in reversed(store.list_jobs(ds.dataset_id, "v1"))}
    for action in ("FileMetaBuild", "IntelligentTag", "SemanticIndex", "FileMetaExport"):
        job = jobs.get(action)
        if job:
            out(f"{action:15} {job.job_id} {job.status}: {job.completed_file_count} done, "
                f"{job.failed_file_count} failed")
    tagged = store.fetchone("SELECT COUNT(*) FROM file_metas WHERE dataset_id = ? AND "
                            "tag_job_id IS NOT NULL", (ds.dataset_id,))[0]
    embedder = embedder_for()
    vectors = vector_store_for(None, "mmdm_file_vectors", embedder.dimension, store)
    search = SearchService(store, vector_store=vectors, embedder=embedder)
    out(f"Files: {store.count_file_metas(ds.dataset_id, 'v1')}, tagged: {tagged}, vectors: "
        f"{vectors.count(search.index_set_for(ds.dataset_id, 'v1'))}")
    dsl = "Tags.all='green' AND FileDir:'green' AND MaxResults=5"  # the park photos' colour
    page = search.search(ds.dataset_id, "v1", parse(dsl))
    out(f"DSL search {dsl!r}: {page.total_count} matches, e.g. "
        f"{[m.file_name for m, _ in page.items]}")
    probe = next(store.iter_file_metas(ds.dataset_id, "v1", batch_size=1))
    image_q = f"QueryImage='{probe.uri}' AND TopK=3"
    hits = search.search(ds.dataset_id, "v1", parse(image_q))
    out(f"Image search like {probe.file_name}: "
        f"{[(m.file_name, round(s or 0, 3)) for m, s in hits.items]}")
    export = jobs.get("FileMetaExport")
    if export:
        out("Export: " + json.dumps({k: export.result.get(k)
                                     for k in ("ManifestUri", "RowCount")}))


def quickstart(workspace: Path, per_scene: int = 8) -> int:
    configure_airflow(workspace)
    out(f"Workspace: {workspace}")
    prepare(workspace, per_scene)
    states = run_dags()
    out(f"DAG runs: {states}")
    report(workspace)
    return 0 if set(states.values()) == {"success"} else 1
