"""``mmdm build | tag | revert | index | export | import`` run a dataset job here, with a
progress bar; ``mmdm jobs`` lists, shows, prints the logs of and stops jobs, wherever they run.

A job command records the job as CreateDatasetJob does (the dataset's job configs fill what
the command leaves out, the same checks refuse a bad request before any job exists) and runs
it in this process. Interrupted (Ctrl-C, a killed process), a tagging or index job resumes
with ``mmdm tag|index … --resume <job id>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmdm.adapters.errors import ConflictError
from mmdm.adapters.jobs.dispatch import check_job_request, run_job
from mmdm.adapters.metadata import Job
from mmdm.adapters.timeutil import to_iso

from . import context
from .output import emit, emit_one, note, out, progress

JOB_COLUMNS = ("DatasetJobId", "Dataset", "DatasetVersion", "JobAction", "Status",
               "TotalFileCount", "CompletedFileCount", "FailedFileCount", "CreateTime")
EXIT_JOB_FAILED = 3  # the job ran and some or all of its files failed (see `mmdm jobs show`)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it


def run_action(args: argparse.Namespace, action: str, spec: dict[str, Any], *,
               mode: str = "Full", roots: list[str] | None = None) -> int:
    """Record and run one job on ``args.dataset``/``args.version``; print its record."""
    store = context.store(args)
    ds, version = context.dataset_version(args)
    resources = context.resources(args, *(roots or []))
    if getattr(args, "resume", None):
        job = store.get_job(args.resume)
    else:
        spec = {**store.job_defaults(ds.dataset_id, version, action),
                **{k: v for k, v in spec.items() if v is not None}}
        spec = check_job_request(store, ds.dataset_id, version, action, mode, spec, resources)
        job = store.create_job(ds.dataset_id, version, action, job_mode=mode, job_spec=spec,
                               description=getattr(args, "description", None))
    note(f"{action} job {job.job_id} on {ds.name}/{version}")
    try:
        with progress(action) as report:
            run_job(store, job, resources, progress=report)
    except KeyboardInterrupt:
        reason = f"interrupted; `mmdm {args.command} … --resume {job.job_id}` goes on"
        store.append_job_log(job.job_id, f"Job failed: {reason}", level="ERROR")
        store.finish_job(job.job_id, "Failed", {"error": reason})
        note(f"{action} job {job.job_id} {reason}")
        return EXIT_INTERRUPTED
    return _finished(args, store.get_job(job.job_id))


def _finished(args: argparse.Namespace, job: Job) -> int:
    store = context.store(args)
    record = {**job.to_pai(), "Result": job.result}
    failures = store.job_file_failures(job.job_id, limit=5)
    emit_one(record, args.output)
    for key, reason in failures:
        note(f"  failed: {key}: {reason}")
    if job.status in ("Failed", "PartialFailed"):
        note(f"{job.job_action} job {job.job_id} ended {job.status}: "
             f"`mmdm jobs show {job.job_id}` lists why files failed")
        return EXIT_JOB_FAILED
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    return run_action(args, "FileMetaBuild", {})


def cmd_tag(args: argparse.Namespace) -> int:
    return run_action(args, "IntelligentTag", {
        "promptId": context.store(args).get_prompt(args.tag_definition).prompt_id,
        "intelligentTagConnectionId": args.connection, "modelId": args.model,
        "maxConcurrency": args.concurrency, "describe": args.describe or None,
        "zeroShotConnectionId": args.zero_shot_connection, "zeroShotModel": args.zero_shot_model,
        "zeroShotThreshold": args.zero_shot_threshold, "zeroShotOnly": args.zero_shot_only or None},
        mode=args.mode)


def cmd_revert(args: argparse.Namespace) -> int:
    args.version = args.version or context.store(args).get_job(args.job).dataset_version
    return run_action(args, "IntelligentTagRevert", {"intelligentTagJobId": args.job})


def cmd_index(args: argparse.Namespace) -> int:
    return run_action(args, "SemanticIndex", {
        "embeddingConnectionId": args.connection, "embeddingModel": args.model,
        "databaseConnectionId": args.vector_connection, "databaseTableName": args.table,
        "concurrency": args.concurrency, "contentList": [args.content]}, mode=args.mode)


def cmd_export(args: argparse.Namespace) -> int:
    target = args.to or str(context.workspace(args) / "exports")
    target = target if "://" in target else Path(target).resolve().as_uri() + "/"
    return run_action(args, "FileMetaExport", {
        "query": args.query or None, "filteredAttributes": args.attributes,
        "exportDirUri": target}, roots=[target])


def cmd_import(args: argparse.Namespace) -> int:
    from .catalog import import_into

    return import_into(args)


# -- mmdm jobs ----------------------------------------------------------------------------------
def _job_row(job: Job, dataset_name: str) -> dict[str, Any]:
    return {**job.to_pai(), "Dataset": dataset_name}


def jobs_list(args: argparse.Namespace) -> int:
    store = context.store(args)
    datasets = ([store.get_dataset(args.dataset)] if args.dataset else store.list_datasets())
    rows = [_job_row(j, ds.name) for ds in datasets
            for j in store.list_jobs(ds.dataset_id, args.version, args.action)
            if args.status is None or j.status == args.status]
    rows.sort(key=lambda r: r["CreateTime"] or "", reverse=True)
    emit(rows[:args.limit], args.output, JOB_COLUMNS)
    return 0


def jobs_show(args: argparse.Namespace) -> int:
    """The job's record, its result, and why files failed (up to ``--failures``)."""
    store = context.store(args)
    job = store.get_job(args.job)
    failures = [{"File": key, "Reason": reason}
                for key, reason in store.job_file_failures(job.job_id, limit=args.failures)]
    emit_one({**job.to_pai(), "StartTime": to_iso(job.start_time), "Result": job.result,
              "FailedFiles": failures}, args.output)
    return 0


def jobs_logs(args: argparse.Namespace) -> int:
    for line in context.store(args).job_logs(args.job):
        out(line)
    return 0


def jobs_stop(args: argparse.Namespace) -> int:
    """A pending job never starts; a running one (in any process) ends ManuallyStop at its
    next status check."""
    store = context.store(args)
    if not store.request_job_stop(args.job):
        raise ConflictError(f"job {args.job} is {store.job_status(args.job)}: only a Pending or "
                            "Running job can be stopped")
    note(f"asked job {args.job} to stop")
    return 0
