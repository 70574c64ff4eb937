"""SmartTag and TagRevert as Airflow tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from mmdm.adapters.jobs import RetryPolicy, run_revert_job, run_tagging_job

from ..failures import fail_fast
from ..hooks.models import DEFAULT_TAGGING_CONN, tagger_for
from ..hooks.oss import OssHook
from .base import DatasetVersionOperator


class SmartTagOperator(DatasetVersionOperator):
    """IntelligentTag: tag a version's images with a VLM against a tag definition.

    :param prompt: the tag definition's id (``pmt-…``) or name. Templated.
    :param dashscope_conn_id: DashScope or OpenAI-compatible connection; without one (or the
        default undefined,
        or ``"local"``) the offline local pixel tagger runs.
    :param model: VLM name (``qwen-vl-max``, ``qwen-vl-plus``, …); by default the
        connection's (``qwen-vl-max`` on DashScope, the ``model`` extra of an OpenAI-compatible
        connection). Templated.
    :param mode: ``Increment`` (new, changed, failed) or ``Full``. Templated.
    :param max_concurrency: model calls in flight (PAI suggests at most 5 per GPU).
    :param describe: also store a short description + keywords as the file's Description.
    :param oss_conn_id: OSS connection for reading ``oss://`` images.
    :param resume_job_id: continue a killed job instead of starting a new one. Templated.
        Without it, a retry of this task resumes the job an earlier try left unfinished.
    :param zero_shot_conn_id: an embedding connection (a text-capable, CLIP-like model) whose
        zero-shot pass screens the images first: only those near a tag go to the VLM (the
        job's ``Usage`` counts ``FirstPassImages`` and ``SentToModel``).
    :param zero_shot_model: model name on that connection.
    :param zero_shot_threshold: cosine similarity a tag's text must pass (default 0.25).
    :param zero_shot_only: tag with the embedding model alone, no VLM (offline and free with a
        local model).
    :param shard: ``(index, count)``: only this shard of the files, for dynamic task mapping
        (``.partial(...).expand(shard=[[0, 4], [1, 4], …])``); shards never overlap.
    """

    template_fields: Sequence[str] = (*DatasetVersionOperator.template_fields, "prompt", "model",
                                      "mode", "resume_job_id")

    def __init__(self, *, prompt: str, dashscope_conn_id: str | None = DEFAULT_TAGGING_CONN,
                 model: str | None = None, mode: str = "Increment", max_concurrency: int = 5,
                 describe: bool = False, oss_conn_id: str | None = OssHook.default_conn_name,
                 resume_job_id: str | None = None,
                 shard: list[int] | tuple[int, int] | None = None,
                 zero_shot_conn_id: str | None = None, zero_shot_model: str | None = None,
                 zero_shot_threshold: float | None = None, zero_shot_only: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.zero_shot = {"zeroShotConnectionId": zero_shot_conn_id,
                          "zeroShotModel": zero_shot_model,
                          "zeroShotThreshold": zero_shot_threshold,
                          "zeroShotOnly": zero_shot_only}
        self.prompt = prompt
        self.dashscope_conn_id = dashscope_conn_id
        self.model = model
        self.mode = mode
        self.max_concurrency = max_concurrency
        self.describe = describe
        self.oss_conn_id = oss_conn_id
        self.resume_job_id = resume_job_id
        self.shard = tuple(shard) if shard is not None else None  # (index, count) from XCom

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        store = hook.get_store()
        with fail_fast():
            summary = run_tagging_job(
                store, self.dataset, self.version,
                tagger=self.tagger(), prompt=self.prompt,
                mode=self.mode, max_concurrency=self.max_concurrency, describe=self.describe,
                retry=RetryPolicy(), progress=self.log_progress,
                oss_config=OssHook(self.oss_conn_id).get_config(),
                resume_job_id=self.resume_job_id or None, shard=self.shard,
                connection_id=self.dashscope_conn_id, owner=self.job_owner(context))
        self.log.info("IntelligentTag %s", summary.to_dict())
        self.check_job(store, summary.job_id)
        hook.close()
        return summary.to_dict()


    def tagger(self):  # type: ignore[no-untyped-def]
        """The VLM, behind (or replaced by) a zero-shot pass when one is asked for."""
        if not (self.zero_shot["zeroShotConnectionId"] or self.zero_shot["zeroShotOnly"]):
            return tagger_for(self.dashscope_conn_id, self.model)
        from mmdm.adapters.jobs.dispatch import tagger_from_spec

        from ..hooks.jobs import job_resources

        spec = {"intelligentTagConnectionId": self.dashscope_conn_id, "modelId": self.model,
                **self.zero_shot}
        return tagger_from_spec(spec, job_resources())


class TagRevertOperator(DatasetVersionOperator):
    """IntelligentTagRevert: remove exactly the tags one tagging job wrote.

    :param tag_job_id: the IntelligentTag job (``dsjob-…``). Templated.
    """

    template_fields: Sequence[str] = (*DatasetVersionOperator.template_fields, "tag_job_id")

    def __init__(self, *, tag_job_id: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.tag_job_id = tag_job_id

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.metadata_hook()
        store = hook.get_store()
        with fail_fast():
            summary = run_revert_job(store, self.dataset, self.version,
                                     tag_job_id=self.tag_job_id)
        self.check_job(store, summary.job_id)
        hook.close()
        return summary.to_dict()
