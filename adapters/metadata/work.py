"""Store operations of the tagging and indexing jobs: what to process, and writing results.

Every write here is one transaction together with the job's per-file outcome, so a job killed
at any point loses nothing it had reported done, and redoes only what was in flight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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

    def _pending_where(self: MetadataStore, dataset_id: str, dataset_version: str,
                       job_id: str, target: str, mode: str, shard: tuple[int, int] | None,
                       definition: tuple[str, int] | None = None,
                       index_set: str | None = None) -> tuple[str, tuple[Any, ...]]:
        """SQL over ``file_metas f`` for the files the job still has to process, and its
        parameters.

        Increment tagging is per tag definition: a file is pending unless this revision of
        this definition tagged its current content (a new revision, another definition, a
        changed file or an earlier failure all make it pending). Description vectors
        (``target="description"``, ``index_set`` named) are per index set: a file is pending
        while its description is not the text last embedded into that set. Full skips only
        what was done (by this definition revision, for tags) after the job was created: the
        files another job running at the same time (on PostgreSQL) already sent to the model.
        After, not at: a job that ended in the millisecond this one was created did its work
        before it, and a Full job redoes that.
        """
        sql = ("f.dataset_id = ? AND f.dataset_version = ? AND f.status = 'ACTIVE' AND NOT EXISTS "
               "(SELECT 1 FROM job_files j WHERE j.job_id = ? AND j.file_key = f.file_meta_id)")
        params: tuple[Any, ...] = (dataset_id, dataset_version, job_id)
        tagged = ("SELECT 1 FROM file_tag_sets s WHERE s.file_pk = f.pk AND s.prompt_id = ? "
                  "AND s.prompt_revision = ? AND s.file_fingerprint = f.file_fingerprint")
        since_created = "(SELECT create_time FROM jobs WHERE job_id = ?)"
        embedded = ("SELECT 1 FROM file_index_sets s WHERE s.index_set_id = ? AND "
                    "s.file_pk = f.pk AND s.content = f.description")
        if target == "description":
            if index_set is None or mode not in ("Full", "Increment"):
                raise ValueError(f"description work needs an index set and JobMode Full or "
                                 f"Increment, not {index_set!r}, {mode!r}")
            sql += " AND f.description IS NOT NULL AND f.description <> ''"
            if mode == "Increment":
                sql += f" AND NOT EXISTS ({embedded})"
                params += (index_set,)
            else:
                sql += f" AND NOT EXISTS ({embedded} AND s.update_time > {since_created})"
                params += (index_set, job_id)
        elif mode == "Increment" and target == "tag" and definition is not None:
            sql += f" AND NOT EXISTS ({tagged})"
            params += definition
        elif mode == "Increment":  # new, changed since its last success, or failed before
            done = _DONE_COLUMN[target]
            sql += f" AND (f.{done} IS NULL OR f.{done} <> f.file_fingerprint)"
        elif mode == "Full" and target == "tag" and definition is not None:
            sql += f" AND NOT EXISTS ({tagged} AND s.update_time > {since_created})"
            params += (*definition, job_id)
        elif mode == "Full" and target == "index":
            sql += (" AND NOT COALESCE(f.indexed_fingerprint = f.file_fingerprint AND "
                    f"f.semantic_index_update_time > {since_created}, FALSE)")
            params += (job_id,)
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
        index_set: str | None = None,
    ) -> list[FileMeta]:
        """The next page of files the job still has to process (none it already reported).
        ``definition``: the tag definition's ``(prompt_id, revision)`` a tagging job applies;
        ``index_set``: the set a description job embeds into."""
        cols = ", ".join(f"f.{c}" for c in self._META_SELECT.split(", "))
        where, params = self._pending_where(dataset_id, dataset_version, job_id, target, mode,
                                            shard, definition, index_set)
        rows = self.fetchall(
            f"SELECT {cols} FROM file_metas f WHERE {where} AND f.pk > ? ORDER BY f.pk LIMIT ?",
            (*params, after_pk, limit),
        )
        return [self.meta_from_row(r) for r in rows]

    def claim_pending_files(
        self: MetadataStore, dataset_id: str, dataset_version: str, *, job_id: str,
        target: str, mode: str, claim: str, after_pk: int, limit: int, lost_after_s: float,
        shard: tuple[int, int] | None = None, definition: tuple[str, int] | None = None,
        index_set: str | None = None,
    ) -> tuple[list[FileMeta], int | None]:
        """PostgreSQL: claim for ``claim`` (the work, e.g. one tag definition revision) up to
        ``limit`` pending files past ``after_pk`` that no live job holds (this one included:
        its claims are in flight). Returns the claimed files still pending, and the key to
        go on after, ``None`` when nothing past ``after_pk`` was left to claim.

        A claim is live while its job has not finished and beats (see ``fail_lost_jobs``),
        so a killed worker's claims lapse without a lease. Two claimers lock candidate rows
        with SKIP LOCKED, so they take different files and never wait for each other; the
        claims' primary key settles a file whose claim committed after this one's snapshot;
        and the metas are read in a new snapshot, so a file another job finished meanwhile
        is not sent to the model again.
        """
        where, params = self._pending_where(dataset_id, dataset_version, job_id, target, mode,
                                            shard, definition, index_set)
        cutoff = now_ms() - int(lost_after_s * 1000)
        live = ("j.finish_time IS NULL AND "
                "COALESCE(j.heartbeat_time, j.start_time, j.create_time) >= ?")
        cols = ", ".join(f"f.{c}" for c in self._META_SELECT.split(", "))
        with self.transaction():
            candidates = [pk for (pk,) in self.fetchall(
                f"SELECT f.pk FROM file_metas f WHERE {where} AND f.pk > ? AND NOT EXISTS "
                f"(SELECT 1 FROM work_claims c JOIN jobs j ON j.job_id = c.job_id AND {live} "
                "WHERE c.target = ? AND c.file_pk = f.pk) "
                "ORDER BY f.pk LIMIT ? FOR NO KEY UPDATE OF f SKIP LOCKED",
                (*params, after_pk, cutoff, claim, limit))]
            if not candidates:
                return [], None
            claimed = [pk for (pk,) in self.fetchall(
                "INSERT INTO work_claims (target, file_pk, job_id) SELECT ?, f.pk, ? FROM "
                f"file_metas f WHERE {self._in_list('f.pk')} ORDER BY f.pk "
                "ON CONFLICT (target, file_pk) DO UPDATE SET job_id = excluded.job_id WHERE "
                "NOT EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = work_claims.job_id AND "
                f"{live}) RETURNING file_pk",
                (claim, job_id, self._list_param(candidates), cutoff))]
            rows = self.fetchall(
                f"SELECT {cols} FROM file_metas f WHERE {where} AND {self._in_list('f.pk')} "
                "ORDER BY f.pk", (*params, self._list_param(claimed)))
        return [self.meta_from_row(r) for r in rows], candidates[-1]

    def release_claims(self: MetadataStore, job_id: str) -> None:
        """Drop a job's claims: it finished, or it starts over (an earlier run's claims)."""
        if not self.shares_work:
            self.execute("DELETE FROM work_claims WHERE job_id = ?", (job_id,))
            return
        # Locked in key order, as a claimer taking over lapsed claims locks them: releasing
        # claims while another job takes them over then never deadlocks.
        self.execute(
            "DELETE FROM work_claims WHERE (target, file_pk) IN (SELECT target, file_pk FROM "
            "work_claims WHERE job_id = ? ORDER BY target, file_pk FOR UPDATE) AND job_id = ?",
            (job_id, job_id))

    def count_pending(self: MetadataStore, dataset_id: str, dataset_version: str, *,
                      job_id: str, target: str, mode: str,
                      shard: tuple[int, int] | None = None,
                      definition: tuple[str, int] | None = None,
                      index_set: str | None = None) -> int:
        """How many files the job has left; with other jobs sharing the work (PostgreSQL), an
        upper bound: they may process some of them."""
        where, params = self._pending_where(dataset_id, dataset_version, job_id, target, mode,
                                            shard, definition, index_set)
        row = self.fetchone(f"SELECT COUNT(*) FROM file_metas f WHERE {where}", params)
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
            # In key order: two jobs' writers then never lock rows in opposite orders.
            for meta, tags, description in sorted(results, key=lambda r: r[0].pk or 0):
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
        return self.apply_tag_edits(file_meta_id, [{
            "user_add": user_add, "user_remove": user_remove,
            "deleted_add": deleted_add, "deleted_remove": deleted_remove}])

    def apply_tag_edits(self: MetadataStore, file_meta_id: str,
                        edits: Sequence[Mapping[str, Sequence[str]]]) -> FileMeta:
        """Several manual edits of one file, applied in order, written once: time linear in
        the tags and edits (a request may carry thousands for one file). An edit's keys:
        ``user_set``/``deleted_set`` (replace the list), then ``*_add`` and ``*_remove``."""
        with self.transaction():
            meta = self.get_file_meta(file_meta_id)
            user = dict.fromkeys(meta.tags_user)  # ordered sets
            deleted = dict.fromkeys(meta.tags_user_delete_ai)
            for edit in edits:
                for group, prefix in ((user, "user"), (deleted, "deleted")):
                    if f"{prefix}_set" in edit:
                        group.clear()
                    group.update(dict.fromkeys(edit.get(f"{prefix}_set", ())))
                    group.update(dict.fromkeys(edit.get(f"{prefix}_add", ())))
                    for tag in edit.get(f"{prefix}_remove", ()):
                        group.pop(tag, None)
            self.execute(
                "UPDATE file_metas SET tags_user = ?, tags_user_delete_ai = ?, tags_all = ?, "
                "tag_update_time = ? WHERE pk = ?",
                (self._encode_tags(list(user)), self._encode_tags(list(deleted)),
                 self._encode_tags(effective_tags(meta.tags_ai, list(user), list(deleted))),
                 now_ms(), meta.pk),
            )
        return self.get_file_meta(file_meta_id)

    # -- semantic index -------------------------------------------------------------------
    def mark_indexed(self: MetadataStore, job_id: str, metas: Sequence[FileMeta]) -> None:
        now = now_ms()
        metas = sorted(metas, key=lambda m: m.pk or 0)  # key order, as in write_ai_tags
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

    def redo_files(self: MetadataStore, job_id: str, file_meta_ids: Sequence[str],
                   description_set: str | None = None) -> None:
        """Make files a job reported indexed pending again (their vectors were lost);
        ``description_set``: the description index set the job wrote into."""
        with self.transaction():
            self.executemany("DELETE FROM job_files WHERE job_id = ? AND file_key = ?",
                             [(job_id, k) for k in file_meta_ids])
            if description_set is not None:
                self.executemany(
                    "DELETE FROM file_index_sets WHERE index_set_id = ? AND file_pk = "
                    "(SELECT pk FROM file_metas WHERE file_meta_id = ?)",
                    [(description_set, k) for k in file_meta_ids])
                return
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

    # -- description vectors -------------------------------------------------------------
    def mark_described_indexed(self: MetadataStore, job_id: str, index_set: str,
                               metas: Sequence[FileMeta]) -> None:
        """The files' descriptions (as read for embedding) are in ``index_set`` now."""
        now = now_ms()
        metas = sorted(metas, key=lambda m: m.pk or 0)  # key order, as in write_ai_tags
        with self.transaction():
            self.executemany(
                "INSERT INTO file_index_sets (index_set_id, file_pk, job_id, content, "
                "update_time) VALUES (?, ?, ?, ?, ?) ON CONFLICT (index_set_id, file_pk) DO "
                "UPDATE SET job_id = excluded.job_id, content = excluded.content, "
                "update_time = excluded.update_time",
                [(index_set, m.pk, job_id, m.description or "", now) for m in metas])
            self.record_job_files(job_id, [(m.file_meta_id, "DONE", None) for m in metas])

    def stale_described_files(self: MetadataStore, index_set: str, dataset_id: str,
                              dataset_version: str, limit: int = 1000) -> list[tuple[int, str]]:
        """``(pk, file_meta_id)`` of files with a vector in the description set that must go:
        the file was deleted, or it has no description any more."""
        return [(int(pk), str(key)) for pk, key in self.fetchall(
            "SELECT f.pk, f.file_meta_id FROM file_index_sets s JOIN file_metas f ON "
            "f.pk = s.file_pk WHERE s.index_set_id = ? AND f.dataset_id = ? AND "
            "f.dataset_version = ? AND (f.status = 'DELETED' OR f.description IS NULL OR "
            "f.description = '') ORDER BY f.pk LIMIT ?",
            (index_set, dataset_id, dataset_version, limit))]

    def forget_described(self: MetadataStore, index_set: str, pks: Sequence[int]) -> None:
        self.executemany("DELETE FROM file_index_sets WHERE index_set_id = ? AND file_pk = ?",
                         [(index_set, p) for p in pks])

    # -- job control ----------------------------------------------------------------------
    def job_status(self: MetadataStore, job_id: str) -> str:
        row = self.fetchone("SELECT status FROM jobs WHERE job_id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"no dataset job {job_id!r}")
        return str(row[0])

    def request_job_stop(self: MetadataStore, job_id: str) -> bool:
        """PAI's StopDatasetJob: a running job notices and ends ManuallyStop (its finish time
        set then); a pending one is finished now, as it will never start."""
        return self.execute(
            "UPDATE jobs SET finish_time = CASE WHEN status = 'Pending' THEN ? ELSE finish_time "
            "END, status = 'ManuallyStop' WHERE job_id = ? AND status IN ('Pending', 'Running')",
            (now_ms(), job_id)) > 0
