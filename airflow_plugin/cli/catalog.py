"""``mmdm datasets``, ``mmdm versions`` and ``mmdm tag-definitions``: what is registered."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmdm.adapters.errors import InvalidParameterError
from mmdm.adapters.lifecycle import delete_dataset, delete_version
from mmdm.adapters.metadata.model import Prompt
from mmdm.adapters.tag_definitions import parse_tag_definition, tag_definition_content
from mmdm.adapters.timeutil import to_iso

from . import context
from .jobs import run_action
from .output import emit, emit_one, note, out

DATASET_COLUMNS = ("DatasetId", "Name", "Edition", "Versions", "LatestVersion", "DataCount",
                   "Uri")
VERSION_COLUMNS = ("VersionName", "VersionKind", "DataCount", "DataSize", "Uri", "Description")


def as_uri(text: str) -> str:
    """A URI as given, or a local path as a ``file://`` URI."""
    return text if "://" in text else Path(text).resolve().as_uri()


# -- datasets -----------------------------------------------------------------------------------
def _dataset_row(args: argparse.Namespace, ds) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    store = context.store(args)
    versions = store.list_versions(ds.dataset_id)
    latest = versions[-1].version_name if versions else None
    count = store.version_stats(ds.dataset_id, latest)["DataCount"] if latest else 0
    return {**ds.to_pai(), "Versions": len(versions), "LatestVersion": latest,
            "DataCount": count}


def datasets_list(args: argparse.Namespace) -> int:
    emit([_dataset_row(args, ds) for ds in context.store(args).list_datasets()], args.output,
         DATASET_COLUMNS)
    return 0


def datasets_create(args: argparse.Namespace) -> int:
    """A dataset over a folder (or ``oss://`` prefix) with its first version ``v1``."""
    store = context.store(args)
    uri = as_uri(args.uri)
    ds = store.create_dataset(args.name, uri, edition=args.edition,
                              description=args.description)
    kind = "LOGICAL" if args.edition == "LOGICAL" else "STORAGE"
    version = store.create_version(ds.dataset_id, source_type=kind,
                                   uri=uri if kind == "LOGICAL" else None)
    emit_one({"DatasetId": ds.dataset_id, "Name": ds.name, "VersionName": version.version_name,
              "Uri": uri}, args.output)
    return 0


def datasets_show(args: argparse.Namespace) -> int:
    store = context.store(args)
    ds = store.get_dataset(args.dataset)
    emit_one({**_dataset_row(args, ds), "VersionNames": [
        v.version_name for v in store.list_versions(ds.dataset_id)]}, args.output)
    return 0


def datasets_delete(args: argparse.Namespace) -> int:
    store = context.store(args)
    ds = store.get_dataset(args.dataset)
    delete_dataset(store, context.search(args), ds.dataset_id)
    note(f"deleted dataset {ds.name} ({ds.dataset_id}); its files are where they were")
    return 0


# -- versions -----------------------------------------------------------------------------------
def _version_row(args: argparse.Namespace, v) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    stats = context.store(args).version_stats(v.dataset_id, v.version_name)
    return {**v.to_pai(), "VersionKind": v.source_type, **stats}


def versions_list(args: argparse.Namespace) -> int:
    store = context.store(args)
    ds = store.get_dataset(args.dataset)
    emit([_version_row(args, v) for v in store.list_versions(ds.dataset_id)], args.output,
         VERSION_COLUMNS)
    return 0


def versions_create(args: argparse.Namespace) -> int:
    """A scanned version (over ``--uri`` or the dataset's folder), or a logical one filled by
    an import: from an export's manifest, or from a query over another version."""
    store = context.store(args)
    ds = store.get_dataset(args.dataset)
    logical = bool(args.from_manifest or args.from_version)
    uri = as_uri(args.uri) if args.uri else None
    version = store.create_version(ds.dataset_id, uri=uri or (ds.uri if logical else None),
                                   source_type="LOGICAL" if logical else "STORAGE",
                                   description=args.description)
    note(f"created {ds.name}/{version.version_name}")
    if not logical:
        emit_one(_version_row(args, version), args.output)
        return 0
    args.version = version.version_name
    return import_into(args)


def import_into(args: argparse.Namespace) -> int:
    """FileMetaImport into ``args.version`` from ``--from-manifest`` or ``--from-version``."""
    if args.from_manifest:
        manifest = as_uri(args.from_manifest)
        spec: dict[str, Any] = {"manifestUri": manifest, "importMode": args.mode}
        roots = [manifest.rsplit("/", 1)[0]]
    else:
        spec = {"srcDatasetId": args.from_dataset or args.dataset,
                "srcDatasetVersion": args.from_version, "query": args.query or None,
                "importMode": args.mode}
        roots = []
    return run_action(args, "FileMetaImport", spec, roots=roots)


def versions_show(args: argparse.Namespace) -> int:
    store = context.store(args)
    ds = store.get_dataset(args.dataset)
    emit_one(_version_row(args, store.get_version(ds.dataset_id, args.version)), args.output)
    return 0


def versions_delete(args: argparse.Namespace) -> int:
    store = context.store(args)
    ds = store.get_dataset(args.dataset)
    delete_version(store, context.search(args), ds.dataset_id, args.version)
    note(f"deleted {ds.name}/{args.version} with its metas, jobs and vectors")
    return 0


# -- tag definitions ----------------------------------------------------------------------------
def _read_definition(path: str) -> dict[str, Any]:
    """A JSON or YAML file in PAI's prompt form (see ``mmdm.adapters.tag_definitions``)."""
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    try:
        content = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as err:
        raise InvalidParameterError("file", f"{path} is neither JSON nor YAML: {err}") from None
    if not isinstance(content, dict):
        raise InvalidParameterError("file", f"{path} must hold an object with TagDefinition")
    return content


def _prompt_row(p: Prompt, full: bool = False) -> dict[str, Any]:
    row = {"PromptId": p.prompt_id, "PromptName": p.name, "Revision": p.revision,
           "Tags": len(p.tag_definitions), "Description": p.description,
           "ModifyTime": to_iso(p.modify_time)}
    return {**row, **tag_definition_content(p)} if full else row


def definitions_create(args: argparse.Namespace) -> int:
    content = _read_definition(args.file)
    guide, tags = parse_tag_definition(content, "file")
    name = args.name or content.get("PromptName")
    if not name:
        raise InvalidParameterError("name", "give the definition a --name (or PromptName in "
                                            "the file)")
    prompt = context.store(args).create_prompt(
        name, tags, guide_prompt=guide, description=args.description or content.get(
            "Description"))
    emit_one(_prompt_row(prompt), args.output)
    return 0


def definitions_update(args: argparse.Namespace) -> int:
    """A new revision: Increment tagging re-tags every file with it."""
    guide, tags = parse_tag_definition(_read_definition(args.file), "file")
    store = context.store(args)
    prompt = store.update_prompt(store.get_prompt(args.definition).prompt_id,
                                 tag_definitions=tags, guide_prompt=guide)
    emit_one(_prompt_row(prompt), args.output)
    return 0


def definitions_list(args: argparse.Namespace) -> int:
    emit([_prompt_row(p) for p in context.store(args).list_prompts()], args.output)
    return 0


def definitions_show(args: argparse.Namespace) -> int:
    prompt = context.store(args).get_prompt(args.definition)
    if args.output in (None, "table", "plain"):
        out(json.dumps({"PromptName": prompt.name, **tag_definition_content(prompt)},
                       ensure_ascii=False, indent=2))
        return 0
    emit_one(_prompt_row(prompt, full=True), args.output)
    return 0


def definitions_delete(args: argparse.Namespace) -> int:
    context.store(args).delete_prompt(args.definition)
    return 0
