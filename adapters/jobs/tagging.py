"""IntelligentTag and IntelligentTagRevert jobs."""

from __future__ import annotations

from typing import Any

from ..metadata import FileMeta, MetadataStore
from ..models.base import TagDefinition, Tagger, TagResult
from ..models.usage import usage_of, usage_since
from ..progress import ProgressCallback
from ..storage import OssConfig
from .common import ImageLoader, open_job
from .runner import FileJobRunner, JobSummary, Outcome, RetryPolicy, call_with_retries, fail_job


def run_tagging_job(
    store: MetadataStore,
    dataset_id: str,
    version: str,
    *,
    tagger: Tagger,
    prompt: str,
    mode: str = "Increment",
    max_concurrency: int = 5,
    describe: bool = False,
    retry: RetryPolicy | None = None,
    oss_config: OssConfig | None = None,
    signed_urls: bool = False,
    progress: ProgressCallback | None = None,
    resume_job_id: str | None = None,
    shard: tuple[int, int] | None = None,
    connection_id: str | None = None,
    owner: str | None = None,
) -> JobSummary:
    """Tag a dataset version's images with a VLM against a tag definition.

    Args:
        store: the metadata store.
        dataset_id: dataset id or name; ``version``: its version name.
        tagger: the model client (DashScope Qwen-VL, or the offline local tagger).
        prompt: the tag definition's id (``pmt-…``) or name.
        mode: ``Full`` re-tags every ACTIVE file; ``Increment`` only files this revision of
            the definition has not tagged as they are now (new, changed, failed before, or
            tagged by an older revision or another definition). On PostgreSQL jobs running
            at once on a version split its files, and none re-tags a file another tagged with
            this revision after it was created.
        max_concurrency: model calls in flight (PAI suggests at most 5 per GPU).
        describe: also ask for a short description + keywords, stored as the Description.
        retry: backoff for 429 / 5xx / timeouts before a file is recorded as failed.
        signed_urls: send OSS files as signed URLs instead of inline bytes.
        resume_job_id: continue a job that was killed; files it finished are not redone.
        owner: who runs the job (an Airflow task instance): that owner's interrupted job is
            resumed instead of starting a new one (see ``open_job``).
        shard: ``(index, count)``: only the files of this shard (keys modulo ``count``), so
            parallel tasks split a version without overlap.

    Returns:
        The job's summary; tags land in the ``ai`` group with the job as ``TagJobId``.
    """
    definition_row = store.get_prompt(prompt)
    definition = TagDefinition(definition_row.guide_prompt, definition_row.tag_definitions,
                               definition_row.prompt_id, definition_row.revision)
    spec = {"intelligentTagConnectionId": connection_id, "promptId": definition_row.prompt_id,
            "promptRevision": definition_row.revision, "modelId": tagger.model,
            "maxConcurrency": max_concurrency, "describe": describe, "shard": shard}
    job = open_job(store, dataset_id, version, "IntelligentTag", mode=mode, spec=spec,
                   resume_job_id=resume_job_id, owner=owner)
    policy = retry or RetryPolicy()
    loader = ImageLoader(oss_config, signed_urls=signed_urls)
    dropped: list[int] = []

    def work(unit: list[FileMeta]) -> list[Outcome]:
        out: list[Outcome] = []
        for meta in unit:
            try:
                image = loader.load(meta)
                out.append((meta, call_with_retries(
                    lambda: tagger.tag(image, definition, describe=describe), policy)))
            except Exception as exc:  # recorded as this file's failure; the job goes on
                out.append((meta, exc))
        return out

    def commit(results: list[Outcome]) -> None:
        rows: list[tuple[FileMeta, list[str], str | None]] = []
        for meta, result in results:
            assert isinstance(result, TagResult)
            dropped.append(len(result.dropped))
            description = _description(result) if describe else None
            rows.append((meta, result.tags, description))
        store.write_ai_tags(job.job_id, definition_row.prompt_id, rows, definition_row.revision)

    before = usage_of(tagger)
    runner: FileJobRunner[Any] = FileJobRunner(
        store, job, target="tag", shard=shard, concurrency=max_concurrency, progress=progress,
        definition=(definition_row.prompt_id, definition_row.revision),
        claim=f"tag:{definition_row.prompt_id}:{definition_row.revision}",
        extra=lambda: {"DroppedTagNames": sum(dropped), "Usage": usage_since(tagger, before)})
    try:
        return runner.run(work, commit)
    except BaseException as exc:
        fail_job(store, job.job_id, exc)
        raise


def _description(result: TagResult) -> str | None:
    if not result.description and not result.keywords:
        return None
    keywords = ", ".join(result.keywords)
    return (result.description or "") + (f"\nKeywords: {keywords}" if keywords else "")


def run_revert_job(store: MetadataStore, dataset_id: str, version: str, *,
                   tag_job_id: str, job_id: str | None = None) -> JobSummary:
    """IntelligentTagRevert: remove exactly the tags ``tag_job_id`` wrote."""
    tag_job = store.get_job(tag_job_id)
    if tag_job.job_action != "IntelligentTag":
        raise ValueError(f"{tag_job_id} is a {tag_job.job_action} job, not IntelligentTag")
    job = open_job(store, dataset_id, version, "IntelligentTagRevert", mode="Full",
                   spec={"intelligentTagJobId": tag_job_id}, resume_job_id=job_id)
    store.start_job(job.job_id)
    touched = store.revert_tag_job(tag_job_id)
    summary = JobSummary(job.job_id, "Succeeded", touched, touched, 0)
    store.update_job_counts(job.job_id, total=touched, completed=touched, failed=0)
    store.append_job_log(job.job_id, f"Reverted the tags of {tag_job_id} on {touched} files")
    store.finish_job(job.job_id, "Succeeded", summary.to_dict())
    return summary
