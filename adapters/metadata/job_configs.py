"""Per-dataset job defaults: PAI's DatasetJobConfig.

A config holds JobSpec keys for one kind of job (``ConfigType`` ``MultimodalSemanticIndex`` or
``MultimodalIntelligentTag``), for a whole dataset or for one version. CreateDatasetJob fills
the keys a request leaves out from the version's config, then from the dataset's, so a team
sets the embedding connection, model and table once per dataset. Model keys stay in
connections: a config naming a secret (PAI's ``apiKey``) is refused, as it would be served back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidParameterError, NotFoundError
from ..ids import new_job_config_id
from ..timeutil import now_ms, to_iso

if TYPE_CHECKING:
    from .store import MetadataStore

# ConfigType -> the JobAction whose JobSpec it fills.
CONFIG_TYPES = {"MultimodalSemanticIndex": "SemanticIndex",
                "MultimodalIntelligentTag": "IntelligentTag"}
# PAI's names for the defaults -> the JobSpec keys they fill.
RENAMED = {"defaultModelId": "modelId", "defaultModelVersion": "modelVersion"}
SECRET_WORDS = ("key", "secret", "password", "token")


@dataclass(frozen=True)
class JobConfig:
    config_id: str
    dataset_id: str
    dataset_version: str | None
    config_type: str
    config: dict[str, Any]
    create_time: int
    modify_time: int

    def to_pai(self) -> dict[str, Any]:
        return {"DatasetJobConfigId": self.config_id, "DatasetId": self.dataset_id,
                "DatasetVersion": self.dataset_version, "ConfigType": self.config_type,
                "Config": json.dumps(self.config, ensure_ascii=False),
                "CreateTime": to_iso(self.create_time), "ModifyTime": to_iso(self.modify_time)}


def parse_config(config_type: str, config: str | dict[str, Any]) -> dict[str, Any]:
    """The config as a dict; an ``InvalidParameterError`` says what is wrong with it."""
    if config_type not in CONFIG_TYPES:
        raise InvalidParameterError("ConfigType", "ConfigType must be one of "
                                    f"{', '.join(CONFIG_TYPES)}, not {config_type!r}")
    try:
        parsed = json.loads(config) if isinstance(config, str) else config
    except json.JSONDecodeError as err:
        raise InvalidParameterError("Config", f"Config is not JSON: {err}") from None
    if not isinstance(parsed, dict):
        raise InvalidParameterError("Config", "Config must be a JSON object of JobSpec keys")
    secrets = [k for k in parsed if any(w in k.lower() for w in SECRET_WORDS)]
    if secrets:
        raise InvalidParameterError("Config", f"Config may not hold {', '.join(secrets)}: "
                                    "model keys live in connections (name one, e.g. "
                                    "intelligentTagConnectionId or embeddingConnectionId)")
    return parsed


class JobConfigMixin:
    """Mixed into :class:`~mmdm.adapters.metadata.store.MetadataStore`."""

    _CONFIG_COLS = ("config_id, dataset_id, dataset_version, config_type, config, create_time, "
                    "modify_time")

    def create_job_config(self: MetadataStore, dataset_id: str, config_type: str,
                          config: str | dict[str, Any],
                          dataset_version: str | None = None) -> JobConfig:
        ds = self.get_dataset(dataset_id)
        if dataset_version:
            self.get_version(ds.dataset_id, dataset_version)
        now = now_ms()
        record = JobConfig(new_job_config_id(), ds.dataset_id, dataset_version or None,
                           config_type, parse_config(config_type, config), now, now)
        self.execute(f"INSERT INTO dataset_job_configs ({self._CONFIG_COLS}) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (record.config_id, record.dataset_id, record.dataset_version,
                      record.config_type, json.dumps(record.config, ensure_ascii=False),
                      now, now))
        return record

    def get_job_config(self: MetadataStore, config_id: str) -> JobConfig:
        row = self.fetchone(f"SELECT {self._CONFIG_COLS} FROM dataset_job_configs "
                            "WHERE config_id = ?", (config_id,))
        if row is None:
            raise NotFoundError(f"no dataset job config {config_id!r}")
        values = list(row)
        values[4] = json.loads(values[4])
        return JobConfig(*values)

    def list_job_configs(self: MetadataStore, dataset_id: str, config_type: str | None = None,
                         dataset_version: str | None = None) -> list[JobConfig]:
        rows = self.fetchall("SELECT config_id FROM dataset_job_configs WHERE dataset_id = ? "
                             "ORDER BY create_time, config_id", (dataset_id,))
        configs = [self.get_job_config(r[0]) for r in rows]
        return [c for c in configs if (config_type is None or c.config_type == config_type)
                and (dataset_version is None or c.dataset_version == dataset_version)]

    def update_job_config(self: MetadataStore, config_id: str,
                          config: str | dict[str, Any]) -> JobConfig:
        old = self.get_job_config(config_id)
        self.execute("UPDATE dataset_job_configs SET config = ?, modify_time = ? "
                     "WHERE config_id = ?",
                     (json.dumps(parse_config(old.config_type, config), ensure_ascii=False),
                      now_ms(), config_id))
        return self.get_job_config(config_id)

    def delete_job_config(self: MetadataStore, config_id: str) -> None:
        self.execute("DELETE FROM dataset_job_configs WHERE config_id = ?",
                     (self.get_job_config(config_id).config_id,))

    def job_defaults(self: MetadataStore, dataset_id: str, version: str,
                     action: str) -> dict[str, Any]:
        """The JobSpec keys the dataset's configs give a job of ``action`` on ``version``:
        dataset-wide ones, overridden by the version's own (newer configs win ties)."""
        defaults: dict[str, Any] = {}
        configs = [c for c in self.list_job_configs(dataset_id)
                   if CONFIG_TYPES[c.config_type] == action
                   and c.dataset_version in (None, version)]
        for c in sorted(configs, key=lambda c: (c.dataset_version is not None, c.modify_time)):
            defaults.update({RENAMED.get(k, k): v for k, v in c.config.items()})
        return defaults
