"""Identifiers in PAI's shapes: ``d-…`` datasets, ``dsjob-…`` jobs, ``dscfg-…`` job configs,
``pmt-…`` prompts."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def new_dataset_id() -> str:
    return "d-" + _random(18)


def new_job_id() -> str:
    return "dsjob-" + _random(18)


def new_job_config_id() -> str:
    return "dscfg-" + _random(14)


def new_prompt_id() -> str:
    return "pmt-" + _random(18)


def file_meta_id(dataset_id: str, dataset_version: str, uri: str) -> str:
    """64 hex characters, as PAI's DatasetFileMetaId; deterministic so re-scans upsert in place."""
    return hashlib.sha256(f"{dataset_id}\n{dataset_version}\n{uri}".encode()).hexdigest()
