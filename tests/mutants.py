"""Mutation check: does the suite catch meaningful one-line bugs in the core modules?

    .venv/bin/python -m tests.mutants            # every mutant
    .venv/bin/python -m tests.mutants scan- job- # those whose name starts so

Each mutant replaces one exact piece of source text (which must occur once) with a bug a
person could write, then runs the tests that protect that promise. A mutant the tests pass is
"missed": a promise without a test. The checkout is never touched: the sources are copied to a
temporary folder that is put first on the import path as the ``mmdm`` package. Needs what the
tests need (PostgreSQL for the store tests). Not part of CI: run it after changing the tests or
the modules below, and add a mutant for each promise you add.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("query", "adapters", "airflow_plugin")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTANTS = [
    # -- query: grammar, compilers, planner, paging ------------------------------------------
    Mutant("grammar-or-binds-tighter", "query/grammar.py",
           'precedence = (("left", OR), ("left", AND), ("right", NOT))',
           'precedence = (("left", AND), ("left", OR), ("right", NOT))',
           ("tests/query/test_semantics.py",)),
    Mutant("grammar-one-shared-parser", "query/grammar.py",
           "return DslParser().parse(tokens)",
           'return globals().setdefault("_shared", DslParser()).parse(tokens)',
           ("tests/query/test_parser.py",)),
    Mutant("sql-not-lets-null-match", "query/compile/sql.py",
           "return exp.not_(_coalesce(compile_filter(item, ctx), exp.false()), copy=False)",
           "return exp.not_(compile_filter(item, ctx), copy=False)",
           ("tests/query/test_semantics.py",)),
    Mutant("planner-stops-at-one-survivor", "query/planner.py",
           "if top_k is not None and len(survivors) >= top_k:",
           "if top_k is not None and len(survivors) >= 1:",
           ("tests/query/test_planner.py", "tests/adapters/test_search.py")),
    Mutant("planner-one-round-only", "query/planner.py",
           "if len(found) < fetch:  # the store has no more candidates above the threshold",
           "if True:",
           ("tests/query/test_planner.py", "tests/adapters/test_search.py")),
    Mutant("paging-any-signature", "query/paging.py",
           "if not hmac.compare_digest(check, _signature(payload, key).encode()) or (",
           "if False and hmac.compare_digest(check, _signature(payload, key).encode()) or (",
           ("tests/query/test_planner.py", "tests/adapters/test_search.py")),
    Mutant("paging-any-query", "query/paging.py",
           'if payload.get("m") != mode or payload.get("q") != query_fingerprint:',
           'if payload.get("m") != mode:',
           ("tests/query/test_planner.py", "tests/adapters/test_search.py")),
    Mutant("paging-negative-total", "adapters/search.py",
           "_is_int(total) and total >= 0 and isinstance(sort, bool)",
           "_is_int(total) and isinstance(sort, bool)",
           ("tests/adapters/test_search.py",)),
    Mutant("search-cache-ignores-the-shape", "adapters/search.py",
           "                 tuple(sorted(kw.items())))",
           "                 ())",
           ("tests/adapters/test_search.py",)),
    Mutant("search-cache-ignores-the-cursor", "adapters/search.py",
           "None if after is None else 1 if isinstance(after, int) else len(after),",
           "None,",
           ("tests/adapters/test_search.py",)),
    Mutant("search-cache-ignores-the-query", "adapters/search.py",
           "shape = (key, self.store.dialect, dataset_id, version,",
           "shape = (self.store.dialect, dataset_id, version,",
           ("tests/adapters/test_search.py",)),
    Mutant("pg-batch-first-duplicate-wins", "adapters/metadata/postgres.py",
           "rows = list({tuple(r[i] for i in scope): r for r in rows}.values())",
           "rows = list({tuple(r[i] for i in scope): r for r in reversed(rows)}.values())",
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("pg-batch-staging-kept", "adapters/metadata/postgres.py",
           'cur.execute("TRUNCATE file_metas_incoming")',
           "pass",
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("pg-likely-new-conflict-raised", "adapters/metadata/postgres.py",
           "except psycopg.errors.UniqueViolation:",
           "except ZeroDivisionError:",
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("pg-likely-new-without-savepoint", "adapters/metadata/postgres.py",
           "with self._conn.transaction():\n                        self._copy(",
           "if True:\n                        self._copy(",
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("pg-analyze-does-nothing", "adapters/metadata/postgres.py",
           'self.execute("ANALYZE file_metas")',
           "pass",
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("count-trusts-every-estimate", "adapters/search.py",
           "if estimate < EXACT_COUNT_UP_TO:  # few expected: count on, the figure may be far off",
           "if False:",
           ("tests/api/test_estimated_counts.py",)),
    Mutant("search-estimate-prices-sorting-unscaled", "adapters/search.py",
           "return total, True, ms * total / counted",
           "return total, True, ms",
           ("tests/api/test_estimated_counts.py",)),
    # -- FileMetaBuild ---------------------------------------------------------------------
    Mutant("scan-size-alone-proves-unchanged", "adapters/scan.py",
           'return (status == "ACTIVE" and size == obj.size and mtime == obj.mtime_ms',
           'return (status == "ACTIVE" and size == obj.size',
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-touched-time-not-kept", "adapters/scan.py",
           "if touched:  # the content is the same: tags and vectors stay valid",
           "if False:",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-writer-error-ignored", "adapters/scan.py",
           "            pending.result()",
           "            pending.exception()",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-lookups-skipped-always", "adapters/scan.py",
           "self.first_build = not self.store.has_file_metas(self.dataset_id, self.version)",
           "self.first_build = True",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-first-build-looks-up", "adapters/scan.py",
           "self.first_build = not self.store.has_file_metas(self.dataset_id, self.version)",
           "self.first_build = False",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-first-build-lists-sizes", "adapters/scan.py",
           "self.storage.list(sizes=not self.first_build)",
           "self.storage.list(sizes=True)",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-never-lists-sizes", "adapters/scan.py",
           "self.storage.list(sizes=not self.first_build)",
           "self.storage.list(sizes=False)",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-meta-keeps-the-listed-size", "adapters/scan.py",
           "read = obj if (obj.size, obj.mtime_ms) == (size, mtime_ms) else replace(",
           "read = obj if True else replace(",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-sizeless-listing-skips-link-checks", "adapters/storage/local.py",
           "if not sizes and entry.is_file(follow_symlinks=False):",
           "if not sizes:",
           ("tests/adapters/test_storage.py", "tests/adapters/test_scan_hostile.py")),
    Mutant("scan-workers-keep-the-task-sigterm-handler", "adapters/scan.py",
           "initializer=_start_worker)",
           "initializer=None)",
           ("tests/adapters/test_scan_processes.py",)),
    Mutant("export-ignores-the-chosen-index-set", "adapters/export/exporter.py",
           "dataset_id, version, q, columns=columns, index_set_id=index_set):",
           "dataset_id, version, q, columns=columns):",
           ("tests/api/test_statistics_and_jobs.py",)),
    Mutant("scan-never-analyzes", "adapters/scan.py",
           "self.store.refresh_statistics_after(result.new + result.changed + result.restored)",
           "self.store.refresh_statistics_after(0)",
           ("tests/adapters/test_scan.py",)),
    Mutant("import-never-analyzes", "adapters/export/importer.py",
           "store.refresh_statistics_after(count)",
           "store.refresh_statistics_after(0)",
           ("tests/adapters/test_export.py",)),
    Mutant("analyzes-after-every-write", "adapters/metadata/store.py",
           "if written >= ANALYZE_AFTER_WRITES:",
           "if True:",
           ("tests/adapters/test_scan.py", "tests/adapters/test_export.py")),
    Mutant("scan-oss-reads-more-than-the-head", "adapters/imageprobe.py",
           "HEAD_BYTES = 64 * 1024",
           "HEAD_BYTES = 256 * 1024",
           ("tests/adapters/test_readme_promises.py",)),
    Mutant("scan-empty-listing-deletes-all", "adapters/scan.py",
           "if result.listed or self.allow_empty:",
           "if True:",
           ("tests/adapters/test_scan.py",)),
    Mutant("scan-unlistable-folder-dropped", "adapters/storage/local.py",
           'yield self._unusable(key, f"folder cannot be listed: {_why(exc)}")',
           "continue",
           ("tests/adapters/test_scan_permissions.py",)),
    Mutant("scan-unreadable-root-not-checked", "adapters/storage/local.py",
           "if not prefix and not os.access(start, os.R_OK | os.X_OK):",
           "if False:",
           ("tests/adapters/test_scan_permissions.py",)),
    Mutant("scan-processes-never-used", "adapters/scan.py",
           "pool = self._pool() if len(objs) >= PROCESS_BATCH else None",
           "pool = None",
           ("tests/adapters/test_scan_processes.py",)),
    Mutant("scan-dead-worker-fails-the-job", "adapters/scan.py",
           "except BrokenProcessPool:  # a worker was killed (out of memory): go on inline",
           "except ZeroDivisionError:",
           ("tests/adapters/test_scan_processes.py",)),
    # -- jobs ----------------------------------------------------------------------------
    Mutant("tags-user-hidden-ignored", "adapters/metadata/work.py",
           '"tags_all": self._encode_tags(effective_tags(ai, user, deleted)), **extra}',
           '"tags_all": self._encode_tags(effective_tags(ai, user, [])), **extra}',
           ("tests/jobs/test_hidden_ai_tags.py",)),
    Mutant("increment-ignores-changed-content", "adapters/metadata/work.py",
           '"AND s.prompt_revision = ? AND s.file_fingerprint = f.file_fingerprint")',
           '"AND s.prompt_revision = ?")',
           ("tests/adapters/test_jobs.py",)),
    # (A claimer stealing a live claim is caught twice over in the code, by the candidate
    # query and by the claim insert's ON CONFLICT guard, so a one-line mutant of either alone
    # changes nothing the tests can see.)
    Mutant("claims-never-lapse", "adapters/metadata/work.py",
           '"COALESCE(j.heartbeat_time, j.start_time, j.create_time) >= ?")',
           '"COALESCE(j.heartbeat_time, j.start_time, j.create_time) >= ? - 1e15")',
           ("tests/jobs/test_concurrent_jobs.py",)),
    Mutant("increment-index-skips-changed-files", "adapters/metadata/work.py",
           'sql += f" AND (f.{done} IS NULL OR f.{done} <> f.file_fingerprint)"',
           'sql += f" AND (f.{done} IS NULL)"',
           ("tests/adapters/test_readme_promises.py",)),
    Mutant("runner-one-call-too-many", "adapters/jobs/runner.py",
           "self.concurrency = max(1, concurrency)",
           "self.concurrency = max(1, concurrency) + 1",
           ("tests/adapters/test_readme_promises.py",)),
    Mutant("retry-after-ignored", "adapters/jobs/runner.py",
           "return max(backoff, retry_after or 0.0)",
           "return backoff",
           ("tests/adapters/test_readme_promises.py",)),
    Mutant("job-full-description-skips-the-same-millisecond", "adapters/metadata/work.py",
           'sql += f" AND NOT EXISTS ({embedded} AND s.update_time > {since_created})"',
           'sql += f" AND NOT EXISTS ({embedded} AND s.update_time >= {since_created})"',
           ("tests/adapters/test_description_search.py",)),
    Mutant("job-full-tagging-skips-the-same-millisecond", "adapters/metadata/work.py",
           'sql += f" AND NOT EXISTS ({tagged} AND s.update_time > {since_created})"',
           'sql += f" AND NOT EXISTS ({tagged} AND s.update_time >= {since_created})"',
           ("tests/adapters/test_jobs.py",)),
    Mutant("job-full-index-skips-the-same-millisecond", "adapters/metadata/work.py",
           'f"f.semantic_index_update_time > {since_created}, FALSE)")',
           'f"f.semantic_index_update_time >= {since_created}, FALSE)")',
           ("tests/adapters/test_jobs.py",)),
    Mutant("jobs-of-one-millisecond-tie", "adapters/metadata/store.py",
           "max(now_ms(), (last or 0) + 1), owner),",
           "now_ms(), owner),",
           ("tests/adapters/test_metadata_store.py", "tests/adapters/test_search.py")),
    Mutant("list-jobs-ties-in-any-order", "adapters/metadata/store.py",
           'rows = self.fetchall(sql + " ORDER BY create_time DESC, job_id DESC", params)',
           'rows = self.fetchall(sql + " ORDER BY create_time DESC", params)',
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("list-prompts-ties-in-any-order", "adapters/metadata/store.py",
           '"SELECT prompt_id FROM prompts ORDER BY create_time, prompt_id"',
           '"SELECT prompt_id FROM prompts ORDER BY create_time"',
           ("tests/adapters/test_metadata_store.py",)),
    Mutant("job-all-failed-is-partial", "adapters/jobs/runner.py",
           's.status = "Failed" if s.completed == 0 else "PartialFailed"',
           's.status = "PartialFailed"',
           ("tests/adapters/test_jobs.py", "tests/airflow_plugin/test_operator_outcomes.py")),
    Mutant("lost-jobs-never-found", "adapters/metadata/store.py",
           '"COALESCE(heartbeat_time, start_time, create_time) < ?",',
           '"COALESCE(heartbeat_time, start_time, create_time) < ? - 1e15",',
           ("tests/jobs/test_faults.py",)),
    Mutant("operator-ignores-failed-fraction", "airflow_plugin/operators/base.py",
           'too_many = job.status == "PartialFailed" and failed > self.max_failed_fraction * total',
           'too_many = False',
           ("tests/airflow_plugin/test_operator_outcomes.py",)),
    Mutant("description-increment-ignores-edits", "adapters/metadata/work.py",
           '"s.file_pk = f.pk AND s.content = f.description")',
           '"s.file_pk = f.pk")',
           ("tests/adapters/test_description_search.py",)),
    Mutant("description-vectors-outlive-files", "adapters/metadata/work.py",
           '"f.dataset_version = ? AND (f.status = \'DELETED\' OR f.description IS NULL OR "',
           '"f.dataset_version = ? AND (f.description IS NULL OR "',
           ("tests/adapters/test_description_search.py",)),
    # -- search ----------------------------------------------------------------------------
    Mutant("search-ignores-index-content", "adapters/search.py",
           'dataset_id, version, index.set_id, str(query.option("IndexContent", "file")))',
           'dataset_id, version, index.set_id)',
           ("tests/adapters/test_description_search.py",)),
    Mutant("paging-any-list-offset", "adapters/search.py",
           "and (offset is None or _is_int(offset) and offset > 0)):",
           "):",
           ("tests/adapters/test_search.py",)),
    Mutant("sorted-keys-never-kept", "adapters/search.py",
           "            _SORTED_KEYS.put(key, keys)\n",
           "",
           ("tests/adapters/test_search.py",)),
    Mutant("sorted-slice-lists-deleted-files", "adapters/search.py",
           "        if from_earlier_list:  # the list's files, less those deleted",
           "        if False:  # the list's files, less those deleted",
           ("tests/adapters/test_search.py",)),
    Mutant("fused-query-ignores-factors", "adapters/search_sources.py",
           "return l2_normalise(np.average(vectors, axis=0, weights=[f for _, _, f in parts]))",
           "return l2_normalise(np.average(vectors, axis=0))",
           ("tests/models/test_openai_compat.py",)),
    Mutant("one-peace-drops-factors", "adapters/models/dashscope.py",
           'contents.append({**item, "factor": factor})',
           'contents.append(item)',
           ("tests/models/test_dashscope_embedder.py",)),
    # -- export ----------------------------------------------------------------------------
    Mutant("export-manifest-first", "adapters/export/exporter.py",
           'storage.write(name, data, "application/x-ndjson")',
           'storage.write(MANIFEST_NAME, b"", "text/yaml"); '
           'storage.write(name, data, "application/x-ndjson")',
           ("tests/adapters/test_export.py",)),
]


def _copy(tmp: Path) -> tuple[Path, Path]:
    """The checkout's tracked files in ``tmp/src``; ``tmp/pkg/mmdm/<package>`` links to them."""
    src, pkg = tmp / "src", tmp / "pkg" / "mmdm"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    pkg.mkdir(parents=True)
    for name in PACKAGES:
        (pkg / name).symlink_to(src / name)
    return src, pkg.parent


def _run(src: Path, path: Path, tests: tuple[str, ...]) -> tuple[bool, float, str]:
    """Whether ``tests`` pass on the copy, how long they took, and the end of their output."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                           f"--basetemp={src.parent / 'pytest'}", *tests],
                          cwd=src, env=env, capture_output=True, text=True)
    return done.returncode == 0, time.monotonic() - started, done.stdout[-3000:]


def main(prefixes: list[str]) -> int:
    chosen = [m for m in MUTANTS if not prefixes or m.name.startswith(tuple(prefixes))]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mmdm-mutants-") as tmp:
        src, path = _copy(Path(tmp))
        where = subprocess.run(
            [sys.executable, "-c", "import mmdm.query as q; print(q.__file__)"],
            env={**os.environ, "PYTHONPATH": str(path)}, capture_output=True, text=True)
        if not where.stdout.startswith(str(path)):
            print(f"the copy is not what imports as mmdm: {where.stdout}{where.stderr}")
            return 2
        missed = []
        for m in chosen:
            file = src / m.path
            text = file.read_text()
            if text.count(m.original) != 1:
                print(f"{m.name:36} STALE: the original text occurs {text.count(m.original)}x")
                missed.append(m.name)
                continue
            file.write_text(text.replace(m.original, m.mutated))
            try:
                passed, seconds, _ = _run(src, path, m.tests)
            finally:
                file.write_text(text)
            print(f"{m.name:36} {'MISSED' if passed else 'caught'}  {seconds:5.1f} s", flush=True)
            if passed:
                missed.append(m.name)
        # The unmutated copy must pass the same tests, or "caught" means nothing.
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        baseline, seconds, output = _run(src, path, tests)
        print(f"{'baseline (no mutant)':36} {'passes' if baseline else 'FAILS'}  {seconds:5.1f} s")
        if not baseline:
            print(output)
    print(f"{len(chosen) - len(missed)} of {len(chosen)} mutants caught in "
          f"{time.monotonic() - started:.0f} s" + (f"; missed: {', '.join(missed)}" if missed
                                                    else ""))
    return 0 if baseline and not missed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
