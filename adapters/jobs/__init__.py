"""Dataset jobs that call models: smart tagging, its revert, and semantic indexing."""

from .indexing import default_index_set_id, run_index_job
from .runner import JobSummary, RetryPolicy
from .tagging import run_revert_job, run_tagging_job

__all__ = [
    "JobSummary", "RetryPolicy", "default_index_set_id", "run_index_job", "run_revert_job",
    "run_tagging_job",
]
