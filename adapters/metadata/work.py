"""Store operations of the tagging and indexing jobs: what to process, and writing results.

Every write here is one transaction together with the job's per-file outcome, so a job killed
at any point loses nothing it had reported done, and redoes only what was in flight.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..timeutil import now_ms
from .model import FileMeta, effective_tags

if TYPE_CHECKING:
    from .store import MetadataStore

# Which fingerprint column says a file is done for each kind of work.
_DONE_COLUMN = {"tag": "tagged_fingerprint", "index": "indexed_fingerprint"}


class JobWorkMixin:
    """Mixed into :class:`~mmdm.adapters.metadata.store.MetadataStore`."""

    def _pending_where(self: MetadataStore, target: str, mode: str,
                       shard: tuple[int, int] | None, definition: tuple[str, int] | None = None,
                       ) -> tuple[str, tuple[Any, ...]]:
        """SQL (placeholders: dataset, version, job, then the returned parameters).

        Increment tagging is per tag definition: a file is pending unless this revision of
        this definition tagged its current content (a new revision, another definition, a
        changed file or an earlier failure all make it pending).
        """
        sql = ("f.dataset_id = ? AND f.dataset_version = ? AND f.status = 'ACTIVE' AND NOT EXISTS "
               "(SELECT 1 FROM job_files j WHERE j.job_id = ? AND j.file_key = f.file_meta_id)")
        params: tuple[Any, ...] = ()
        if mode == "Increment" and target == "tag" and definition is not None:
            sql += (" AND NOT EXISTS (SELECT 1 FROM file_tag_sets s WHERE s.file_pk = f.pk AND "
                    "s.prompt_id = ? AND s.prompt_revision = ? AND "
                    "s.file_fingerprint = f.file_fingerprint)")
            params = definition
        elif mode == "Increment":  # new, changed since its last success, or failed before
            done = _DONE_COLUMN[target]
            sql += f" AND (f.{done} IS NULL OR f.{done} <> f.file_fingerprint)"
        elif mode != "Full":
            raise ValueError(f"JobMode must be Full or Increment, not {mode!r}")
        if shard is not None:  # shards partition the keys: no file is processed twice
            index, count = shard
            if not 0 <= index < count:
                raise ValueError(f"shard {index} of {count} does not exist")
            return sql + f" AND {self._modulo('f.pk')} = ?", (*params, count, index)
        return sql, params

    def pending_files(
        self: MetadataStore, dataset_id: str, dataset_version: str, *, job_id: str,
        target: str, mode: str, after_pk: int = 0, limit: int = 500,
        shard: tuple[int, int] | None = None, definition: tuple[str, int] | None = None,
    ) -> list[FileMeta]:
        """The next page of files the job still has to process (none it already reported).
        ``definition``: the tag definition's ``(prompt_id, revision)`` a tagging job applies."""
        cols = ", ".join(f"f.{c}" for c in self._META_SELECT.split(", "))
        where, shard_params = self._pending_where(target, mode, shard, definition)
        rows = self.fetchall(
            f"SELECT {cols} FROM file_metas f WHERE {where} AND f.pk > ? ORDER BY f.pk LIMIT ?",
            (dataset_id, dataset_version, job_id, *shard_params, after_pk, limit),
        )
        return [self.meta_from_row(r) for r in rows]

    def count_pending(self: MetadataStore, dataset_id: str, dataset_version: str, *,
                      job_id: str, target: str, mode: str,
                      shard: tuple[int, int] | None = None,
                      definition: tuple[str, int] | None = None) -> int:
        where, shard_params = self._pending_where(target, mode, shard, definition)
        row = self.fetchone(f"SELECT COUNT(*) FROM file_metas f WHERE {where}",
                            (dataset_id, dataset_version, job_id, *shard_params))
        return int(row[0])

    # -- tags -----------------------------------------------------------------------------
    def _set_ai_tags(self: MetadataStore, pk: int, **extra: Any) -> None:
        """Recompute ``tags_ai`` (union of the file's tag sets) and ``tags_all``."""
        sets = self.fetchall(
            "SELECT tags FROM file_tag_sets WHERE file_pk = ? ORDER BY update_time, prompt_id",
            (pk,))
        ai = list(dict.fromkeys(t for (tags,) in sets for t in json.loads(tags)))
        row = self.fetchone("SELECT tags_user, tags_user_delete_ai FROM file_metas WHERE pk = ?",
                            (pk,))
        if row is None:
            raise NotFoundError(f"no file meta with key {pk}")
        user, deleted = self._decode_tags(row[0]), self._decode_tags(row[1])
        assignments = {"tags_ai": self._encode_tags(ai),
                       "tags_all": self._encode_tags(effective_tags(ai, user, deleted)), **extra}
        self.execute(
            f"UPDATE file_metas SET {', '.join(f'{c} = ?' for c in assignments)} WHERE pk = ?",
            (*assignments.values(), pk),
        )

    def write_ai_tags(
        self: MetadataStore, job_id: str, prompt_id: str,
        results: Sequence[tuple[FileMeta, list[str], str | None]], revision: int | None = None,
    ) -> None:
        """Store each file's tags from ``job_id`` (replacing that definition's older tags,
        and remembering which revision of it and which file content they came from) and
        report the files done, in one transaction."""
        now = now_ms()
        with self.transaction():
            for meta, tags, description in results:
                self.execute(
                    "INSERT INTO file_tag_sets (file_pk, prompt_id, job_id, tags, update_time, "
                    "prompt_revision, file_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (file_pk, prompt_id) DO UPDATE SET job_id = excluded.job_id, "
                    "tags = excluded.tags, update_time = excluded.update_time, "
                    "prompt_revision = excluded.prompt_revision, "
                    "file_fingerprint = excluded.file_fingerprint",
                    (meta.pk, prompt_id, job_id, json.dumps(tags, ensure_ascii=False), now,
                     revision, meta.file_fingerprint),
                )
                extra: dict[str, Any] = {"tag_job_id": job_id, "tag_update_time": now,
                                         "tagged_fingerprint": meta.file_fingerprint}
                if description is not None:
                    extra |= {"description": description,
                              "description_folded": description.casefold()}
                self._set_ai_tags(meta.pk, **extra)
            self.record_job_files(job_id, [(m.file_meta_id, "DONE", None) for m, _, _ in results])

    def revert_tag_job(self: MetadataStore, tag_job_id: str) -> int:
        """Remove exactly the tags ``tag_job_id`` wrote; returns the number of files touched."""
        pks = [r[0] for r in self.fetchall(
            "SELECT file_pk FROM file_tag_sets WHERE job_id = ?", (tag_job_id,))]
        now = now_ms()
        with self.transaction():
            self.execute("DELETE FROM file_tag_sets WHERE job_id = ?", (tag_job_id,))
            for pk in pks:
                self._set_ai_tags(pk, tag_update_time=now, tagged_fingerprint=None)
        return len(pks)

    def update_user_tags(
        self: MetadataStore, file_meta_id: str, *, user_add: Sequence[str] = (),
        user_remove: Sequence[str] = (), deleted_add: Sequence[str] = (),
        deleted_remove: Sequence[str] = (),
    ) -> FileMeta:
        """PAI's manual edit: add/remove on ``user`` and ``user-delete-ai-tags`` only."""
        with self.transaction():
            meta = self.get_file_meta(file_meta_id)
            user = [t for t in dict.fromkeys([*meta.tags_user, *user_add]) if t not in user_remove]
            deleted = [t for t in dict.fromkeys([*meta.tags_user_delete_ai, *deleted_add])
                       if t not in deleted_remove]
            self.execute(
                "UPDATE file_metas SET tags_user = ?, tags_user_delete_ai = ?, tags_all = ?, "
                "tag_update_time = ? WHERE pk = ?",
                (self._encode_tags(user), self._encode_tags(deleted),
                 self._encode_tags(effective_tags(meta.tags_ai, user, deleted)), now_ms(),
                 meta.pk),
            )
        return self.get_file_meta(file_meta_id)

    # -- semantic index -------------------------------------------------------------------
    def mark_indexed(self: MetadataStore, job_id: str, metas: Sequence[FileMeta]) -> None:
        now = now_ms()
        with self.transaction():
            self.executemany(
                "UPDATE file_metas SET semantic_index_job_id = ?, semantic_index_update_time = ?, "
                "indexed_fingerprint = ? WHERE pk = ?",
                [(job_id, now, m.file_fingerprint, m.pk) for m in metas],
            )
            self.record_job_files(job_id, [(m.file_meta_id, "DONE", None) for m in metas])

    def deleted_indexed_files(self: MetadataStore, dataset_id: str, dataset_version: str,
                              limit: int = 1000) -> list[FileMeta]:
        """DELETED metas that still have vectors: the index job removes them."""
        rows = self.fetchall(
            f"SELECT {self._META_SELECT} FROM file_metas WHERE dataset_id = ? AND "
            "dataset_version = ? AND status = 'DELETED' AND semantic_index_job_id IS NOT NULL "
            "ORDER BY pk LIMIT ?",
            (dataset_id, dataset_version, limit),
        )
        return [self.meta_from_row(r) for r in rows]

    def job_done_keys(self: MetadataStore, job_id: str) -> list[str]:
        return [k for (k,) in self.fetchall(
            "SELECT file_key FROM job_files WHERE job_id = ? AND state = 'DONE'", (job_id,))]

    def redo_files(self: MetadataStore, job_id: str, file_meta_ids: Sequence[str]) -> None:
        """Make files a job reported indexed pending again (their vectors were lost)."""
        with self.transaction():
            self.executemany("DELETE FROM job_files WHERE job_id = ? AND file_key = ?",
                             [(job_id, k) for k in file_meta_ids])
            self.executemany(
                "UPDATE file_metas SET semantic_index_job_id = NULL, "
                "semantic_index_update_time = NULL, indexed_fingerprint = NULL "
                "WHERE file_meta_id = ?", [(k,) for k in file_meta_ids])

    def clear_index_state(self: MetadataStore, pks: Sequence[int]) -> None:
        self.executemany(
            "UPDATE file_metas SET semantic_index_job_id = NULL, "
            "semantic_index_update_time = NULL, indexed_fingerprint = NULL WHERE pk = ?",
            [(p,) for p in pks],
        )

    # -- job control ----------------------------------------------------------------------
    def job_status(self: MetadataStore, job_id: str) -> str:
        row = self.fetchone("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"no dataset job {job_id!r}")
        return str(row[0])

    def request_job_stop(self: MetadataStore, job_id: str) -> bool:
        """PAI's StopDatasetJob: a running job notices and ends ManuallyStop."""
        return self.execute(
            "UPDATE jobs SET status = 'ManuallyStop' WHERE job_id = ? "
            "AND status IN ('Pending', 'Running')", (job_id,)) > 0
