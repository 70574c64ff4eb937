"""The ``mmdm`` command: quickstart on embedded defaults, and dataset housekeeping.

Kept a thin script over the library; Airflow is not imported unless a command needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from adapters.errors import AdapterError, NotFoundError
from adapters.metadata import MetadataStore, open_store
from adapters.samples import generate_samples
from adapters.scan import build_file_metas

DEFAULT_WORKSPACE = "mmdm-workspace"


def _workspace(args: argparse.Namespace) -> Path:
    return Path(args.workspace or os.environ.get("MMDM_WORKSPACE", DEFAULT_WORKSPACE)).resolve()


def _store(args: argparse.Namespace) -> MetadataStore:
    url = args.metadata or os.environ.get("MMDM_METADATA_URL")
    if not url:
        url = str(_workspace(args) / "metadata.db")
    return open_store(url)


def _print_progress(p) -> None:
    print(f"  … {p}", flush=True)


def cmd_quickstart(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    samples = ws / "samples"
    print(f"Workspace: {ws}")
    if not samples.exists():
        made = generate_samples(samples, per_scene=args.per_scene)
        print(f"Generated {made['images']} sample images (+{made['other']} other files) "
              f"in {samples}")
    store = _store(args)
    try:
        ds = store.get_dataset("quickstart-samples")
    except NotFoundError:
        ds = store.create_dataset("quickstart-samples", samples.as_uri(),
                                  description="Procedurally generated images")
        store.create_version(ds.dataset_id)
    version = store.list_versions(ds.dataset_id)[-1].version_name
    print(f"Dataset {ds.dataset_id} ({ds.name}) version {version}: {ds.uri}")
    result = build_file_metas(store, ds.dataset_id, version, progress=_print_progress)
    print("FileMetaBuild", result.job_id, json.dumps(result.to_dict()))
    for uri, reason in result.failures:
        print(f"  failed: {uri}: {reason}")
    print("Version stats:", store.version_stats(ds.dataset_id, version))
    first = next(store.iter_file_metas(ds.dataset_id, version, batch_size=1), None)
    if first is not None:
        print("A file meta:", json.dumps(first.to_pai(), ensure_ascii=False, indent=2))
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmdm", description=__doc__)
    parser.add_argument("--workspace", help=f"workspace folder (default ./{DEFAULT_WORKSPACE})")
    parser.add_argument("--metadata", help="metadata store URL (default: SQLite in the workspace)")
    sub = parser.add_subparsers(dest="command", required=True)
    qs = sub.add_parser("quickstart", help="generate sample images, register and scan them")
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
