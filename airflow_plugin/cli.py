"""The ``mmdm`` command: quickstart on embedded defaults, and dataset housekeeping.

Kept a thin script over the library; Airflow is not imported unless a command needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mmdm.adapters.errors import AdapterError
from mmdm.adapters.metadata import MetadataStore, open_store
from mmdm.adapters.scan import build_file_metas

if TYPE_CHECKING:
    from mmdm.adapters.models.base import Embedder

DEFAULT_WORKSPACE = "mmdm-workspace"


def _workspace(args: argparse.Namespace) -> Path:
    return Path(args.workspace or os.environ.get("MMDM_WORKSPACE", DEFAULT_WORKSPACE)).resolve()


def _store(args: argparse.Namespace) -> MetadataStore:
    from mmdm.adapters.metadata.embedded import workspace_store_url

    return open_store(args.metadata or workspace_store_url(_workspace(args)))


def _print_progress(p) -> None:
    print(f"  … {p}", flush=True)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import quickstart

    if args.metadata:
        os.environ["MMDM_METADATA_URL"] = args.metadata
    return quickstart(_workspace(args), per_scene=args.per_scene)


def cmd_datasets(args: argparse.Namespace) -> int:
    store = _store(args)
    for ds in store.list_datasets():
        for v in store.list_versions(ds.dataset_id):
            stats = store.version_stats(ds.dataset_id, v.version_name)
            print(f"{ds.dataset_id}\t{ds.name}\t{v.version_name}\t{v.uri}\t{stats['DataCount']}")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    store = _store(args)
    ds = store.create_dataset(args.name, args.uri)
    v = store.create_version(ds.dataset_id)
    print(json.dumps({"DatasetId": ds.dataset_id, "VersionName": v.version_name}))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    store = _store(args)
    result = build_file_metas(store, args.dataset, args.version, progress=_print_progress)
    print(json.dumps({"DatasetJobId": result.job_id, **result.to_dict()}))
    return 0 if not result.failed else 3


def _eval_embedder(args: argparse.Namespace) -> Embedder:
    if args.connection == "local":  # no Airflow needed, and --dimension is honoured
        from mmdm.adapters.models import open_embedder

        return open_embedder("local", dimension=args.dimension)
    from mmdm.airflow_plugin.hooks.models import embedder_for  # imports Airflow: only when needed

    return embedder_for(args.connection, args.model, args.dimension)


def cmd_eval(args: argparse.Namespace) -> int:
    from mmdm.adapters.evaluation import Calls, evaluate_embedding  # loads the model clients

    result = evaluate_embedding(
        args.data, _eval_embedder(args), prefix=args.prefix, features=args.features,
        queries=args.queries, exemplars_per_tag=args.exemplars,
        calls=Calls(max_concurrency=args.concurrency),
        progress=lambda p: print(f"  … {p}", file=sys.stderr, flush=True))
    for problem in result.problems:
        print(f"  left out: {problem}", file=sys.stderr)
    if args.report:
        result.write_report(args.report)
    print(json.dumps(result.to_dict()) if args.json else result.table())
    return 0 if not result.problems else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmdm", description=__doc__)
    parser.add_argument("--workspace", help=f"workspace folder (default ./{DEFAULT_WORKSPACE})")
    parser.add_argument("--metadata", help="metadata store URL (default: the workspace's "
                        "embedded PostgreSQL; sqlite:///path.db for a single-process store)")
    sub = parser.add_subparsers(dest="command", required=True)
    qs = sub.add_parser("quickstart", help="sample images through the whole pipeline, in Airflow")
    qs.add_argument("--per-scene", type=int, default=8, help="images per sample folder")
    qs.set_defaults(func=cmd_quickstart)
    sub.add_parser("datasets", help="list datasets and versions").set_defaults(func=cmd_datasets)
    reg = sub.add_parser("register", help="register a dataset (local folder or oss://) as v1")
    reg.add_argument("--name", required=True)
    reg.add_argument("--uri", required=True)
    reg.set_defaults(func=cmd_register)
    build = sub.add_parser("build", help="run FileMetaBuild on a dataset version")
    build.add_argument("--dataset", required=True, help="dataset id or name")
    build.add_argument("--version", default="v1")
    build.set_defaults(func=cmd_build)
    ev = sub.add_parser("eval", help="Precision@k of an embedding model on a labelled set "
                                     "(dataset.jsonl + images/)")
    ev.add_argument("--data", required=True, help="folder holding dataset.jsonl and images/")
    ev.add_argument("--connection", default="local",
                    help="Airflow connection id (mmdm_dashscope / mmdm_eas), or 'local' for "
                         "the offline model (default)")
    ev.add_argument("--model", help="model name on the connection")
    ev.add_argument("--dimension", type=int, help="vector size where the model offers several")
    ev.add_argument("--prefix", default="", help="text sent before each tag (an instruction)")
    ev.add_argument("--features", help="feature file (JSONL) caching vectors between runs")
    ev.add_argument("--queries", choices=["auto", "text", "image"], default="auto",
                    help="tag text, or the mean of exemplar images (image-only models); "
                         "auto picks text when the model can embed it")
    ev.add_argument("--exemplars", type=int, default=3,
                    help="image queries: ground-truth images per tag that make its query")
    ev.add_argument("--report", help="write the per-tag report (JSON lines) here")
    ev.add_argument("--concurrency", type=int, default=4, help="embedding calls in flight")
    ev.add_argument("--json", action="store_true", help="print the table as JSON")
    ev.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AdapterError as exc:
        print(f"mmdm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
