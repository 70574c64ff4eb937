"""The ``mmdm`` command: the whole workflow without writing Python.

Commands follow the Airflow CLI's habits: ``mmdm <group> <action>`` for what is registered
(``datasets``, ``versions``, ``tag-definitions``, ``jobs``), a verb for each job (``build``,
``tag``, ``revert``, ``index``, ``export``, ``import``), ``-o table|json|jsonl|plain``.
Without ``--metadata`` everything lives in the workspace (``--workspace``, ``MMDM_WORKSPACE``):
its embedded PostgreSQL, vectors and exports. Airflow is imported only by commands that need it
(``quickstart``, and a job naming an Airflow ``--connection``).

Exit codes: 0 done; 1 an unexpected error (with its traceback); 2 a usage or input error (one
line: an unknown dataset, a DSL error with its position, a taken name); 3 a job ended
``Failed`` or ``PartialFailed`` (``mmdm jobs show`` lists why files failed), or ``eval`` left
items out; 4 a service stayed unavailable after retries (database, model, storage); 130
interrupted.
"""

from __future__ import annotations

import argparse
import sys

from mmdm.adapters.errors import AdapterError
from mmdm.query import QueryError

from . import catalog, jobs, misc, search
from .output import FORMATS, stdout_for_data_only

EXIT_USAGE, EXIT_UNAVAILABLE = 2, 4


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=FORMATS,
                   help="table (default on a terminal), json, jsonl or plain (tab-separated)")


def _dataset(p: argparse.ArgumentParser, version: bool = True) -> None:
    p.add_argument("dataset", help="dataset id (d-…) or name")
    if version:
        p.add_argument("-v", "--version", help="version name (default: the newest)")


def _command(sub, name: str, func, help: str, **kwargs) -> argparse.ArgumentParser:  # noqa: A002
    p = sub.add_parser(name, help=help, description=help, **kwargs)
    p.set_defaults(func=func)
    _output(p)
    return p


def _group(sub, name: str, help: str, **kwargs):  # type: ignore[no-untyped-def]  # noqa: A002
    p = sub.add_parser(name, help=help, description=help, **kwargs)
    return p.add_subparsers(dest="action", metavar="ACTION", required=True)


def _catalog_commands(sub) -> None:  # type: ignore[no-untyped-def]
    ds = _group(sub, "datasets", "datasets: list, create, show, delete")
    _command(ds, "list", catalog.datasets_list, "list the datasets")
    p = _command(ds, "create", catalog.datasets_create,
                 "register a folder (or oss:// prefix) as a dataset with version v1")
    p.add_argument("--name", required=True)
    p.add_argument("--uri", required=True, help="a local folder, file:// or oss:// URI")
    p.add_argument("--edition", default="ADVANCED", choices=("ADVANCED", "LOGICAL"),
                   help="LOGICAL: versions filled by import, not scanned")
    p.add_argument("--description")
    _dataset(_command(ds, "show", catalog.datasets_show, "a dataset and its versions"), False)
    _dataset(_command(ds, "delete", catalog.datasets_delete,
                      "delete a dataset's metas, jobs and vectors (its files stay)"), False)

    vs = _group(sub, "versions", "dataset versions: list, create, show, delete")
    _dataset(_command(vs, "list", catalog.versions_list, "a dataset's versions"), False)
    p = _command(vs, "create", catalog.versions_create,
                 "a new version: scanned from a folder, or logical, from an export's manifest "
                 "or a query over another version")
    _dataset(p, False)
    p.add_argument("--uri", help="the folder to scan (default: the dataset's)")
    p.add_argument("--description")
    _import_sources(p, required=False)
    for action, func, help_ in (("show", catalog.versions_show, "one version"),
                                ("delete", catalog.versions_delete,
                                 "delete a version's metas, jobs and vectors")):
        p = _command(vs, action, func, help_)
        _dataset(p, False)
        p.add_argument("version", help="version name, e.g. v2")

    td = _group(sub, "tag-definitions", "tag definitions (PAI's prompts): create, update, "
                "list, show, delete", aliases=["prompts"])
    p = _command(td, "create", catalog.definitions_create,
                 'from a JSON or YAML file: {"GuidePrompt": "...", "TagDefinition": '
                 '{"tag": "when it applies"}}')
    p.add_argument("--file", required=True)
    p.add_argument("--name", help="(default: PromptName in the file)")
    p.add_argument("--description")
    p = _command(td, "update", catalog.definitions_update,
                 "replace the content from a file (a new revision)")
    p.add_argument("definition", help="id (pmt-…) or name")
    p.add_argument("--file", required=True)
    _command(td, "list", catalog.definitions_list, "list the tag definitions")
    for action, func, help_ in (("show", catalog.definitions_show, "print one, as a file"),
                                ("delete", catalog.definitions_delete, "delete one")):
        _command(td, action, func, help_).add_argument("definition", help="id (pmt-…) or name")


def _import_sources(p: argparse.ArgumentParser, required: bool) -> None:
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("--from-manifest", help="an export's manifest (path or URI)")
    src.add_argument("--from-version", help="import the matches of --query in this version")
    p.add_argument("--from-dataset", help="the source version's dataset (default: this one)")
    p.add_argument("--query", help="QueryExpression over the source version (default: all)")
    p.add_argument("--mode", default="append", choices=("append", "replace"))


def _job_commands(sub) -> None:  # type: ignore[no-untyped-def]
    p = _command(sub, "build", jobs.cmd_build, "FileMetaBuild: scan a version's folder")
    _dataset(p)
    p = _command(sub, "tag", jobs.cmd_tag, "IntelligentTag: tag images against a definition")
    _dataset(p)
    p.add_argument("-t", "--tag-definition", required=True, help="id (pmt-…) or name")
    p.add_argument("--mode", default="Increment", choices=("Increment", "Full"))
    p.add_argument("--connection", help="Airflow connection of the VLM (default: the "
                                        "offline local tagger)")
    p.add_argument("--model", help="model name on the connection, e.g. qwen-vl-max")
    p.add_argument("--concurrency", type=int, help="model calls in flight (default 5)")
    p.add_argument("--describe", action="store_true", help="also store a description")
    p.add_argument("--zero-shot-connection", metavar="CONN",
                   help="an embedding model (Airflow connection, text-capable) that screens "
                        "the images first: only those near a tag go to the VLM")
    p.add_argument("--zero-shot-model", help="model name on that connection")
    p.add_argument("--zero-shot-threshold", type=float,
                   help="cosine similarity a tag's text must pass (default 0.25)")
    p.add_argument("--zero-shot-only", action="store_true",
                   help="tag with the embedding model alone, no VLM")
    p.add_argument("--resume", metavar="JOB_ID", help="go on with an interrupted job")
    p = _command(sub, "revert", jobs.cmd_revert,
                 "IntelligentTagRevert: remove the tags one tagging job wrote")
    _dataset(p)
    p.add_argument("--job", required=True, help="the IntelligentTag job (dsjob-…)")
    p = _command(sub, "index", jobs.cmd_index, "SemanticIndex: embed images into vectors")
    _dataset(p)
    p.add_argument("--mode", default="Increment", choices=("Increment", "Full"))
    p.add_argument("--content", default="file", choices=("file", "description"),
                   help="what to embed: the images, or the descriptions a `tag --describe` "
                        "stored (searched with IndexContent='description'; needs a "
                        "text-capable model)")
    p.add_argument("--connection", help="Airflow connection of the embedding model "
                                        "(default: the offline local embedder)")
    p.add_argument("--model", help="model name on the connection")
    p.add_argument("--vector-connection", help="Airflow connection of the vector database "
                                               "(default: the workspace's)")
    p.add_argument("--table", help="vector table (default mmdm_file_vectors)")
    p.add_argument("--concurrency", type=int, help="embedding calls in flight (default 5)")
    p.add_argument("--resume", metavar="JOB_ID", help="go on with an interrupted job")
    p = _command(sub, "export", jobs.cmd_export,
                 "FileMetaExport: a query's matches to JSONL files and a manifest")
    _dataset(p)
    p.add_argument("--query", help="QueryExpression (default: every file)")
    p.add_argument("--to", help="folder or oss:// prefix (default: the workspace's exports/)")
    p.add_argument("--attributes", help="comma-separated attributes to keep, e.g. "
                                        "FileName,Tags.all")
    p = _command(sub, "import", jobs.cmd_import,
                 "FileMetaImport into a logical version")
    _dataset(p)
    _import_sources(p, required=True)

    js = _group(sub, "jobs", "dataset jobs: list, show, logs, stop")
    p = _command(js, "list", jobs.jobs_list, "jobs, newest first")
    p.add_argument("-d", "--dataset", help="one dataset's (id or name)")
    p.add_argument("-v", "--version")
    p.add_argument("--action", help="e.g. IntelligentTag")
    p.add_argument("--status", help="e.g. Running, Failed")
    p.add_argument("--limit", type=int, default=50)
    p = _command(js, "show", jobs.jobs_show, "a job's record, result and failed files")
    p.add_argument("job", help="job id (dsjob-…)")
    p.add_argument("--failures", type=int, default=100, help="failed files to list")
    for action, func, help_ in (("logs", jobs.jobs_logs, "a job's log lines"),
                                ("stop", jobs.jobs_stop, "stop a pending or running job")):
        _command(js, action, func, help_).add_argument("job", help="job id (dsjob-…)")


def _search_command(sub) -> None:  # type: ignore[no-untyped-def]
    p = _command(sub, "search", search.cmd_search,
                 "search a version with a QueryExpression or request parameters")
    _dataset(p)
    p.add_argument("query", nargs="?", help="QueryExpression, e.g. \"Tags.all='cat' AND "
                                            "FileDir:'2025'\" (right after the dataset)")
    p.add_argument("-q", "--query", dest="query_option", metavar="QUERY",
                   help="the QueryExpression as an option, anywhere on the line")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="a ListDatasetFileMetas parameter, e.g. QueryTagsIncludeAny=cat,dog")
    p.add_argument("--image", help="an image file to search by (image-to-image)")
    p.add_argument("-n", "--max-results", type=int, help="page size (default 10, at most 100)")
    p.add_argument("--next-token", help="the next page, from the previous one")
    p.add_argument("--all", action="store_true", help="every match, not one page")
    p.add_argument("--explain", action="store_true", help="print the plan that ran")
    p.add_argument("--exact-count", action="store_true",
                   help="count every match (else a broad filter's total may be an estimate)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmdm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", help="workspace folder (default ./mmdm-workspace)")
    parser.add_argument("--metadata", help="metadata store URL (default: MMDM_METADATA_URL, "
                        "else the workspace's embedded PostgreSQL; sqlite:///path.db for a "
                        "single-process store)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    misc.add_commands(sub, _command)
    _catalog_commands(sub)
    _job_commands(sub)
    _search_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with stdout_for_data_only():
            return args.func(args)
    except QueryError as exc:
        print(f"mmdm: error: {exc.render()}", file=sys.stderr)
        return EXIT_USAGE
    except AdapterError as exc:
        print(f"mmdm: error: {exc}", file=sys.stderr)
        return (EXIT_UNAVAILABLE if exc.retriable else EXIT_USAGE if exc.is_input_error
                else 1)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"mmdm: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mmdm: interrupted", file=sys.stderr)
        return jobs.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
