"""The metadata schema, one logical design for two engines, migrated forward by version.

Times are BIGINT UTC epoch milliseconds in both engines so comparisons mean the same thing.
Tag groups are ``text[]`` with GIN indexes on PostgreSQL; SQLite keeps JSON arrays plus a
``file_tags`` side table (maintained by triggers) because ``json_each`` scans cannot use an index.
``*_folded`` columns hold ``str.casefold()`` of searchable text, computed on write, so ``:``
matching is identical on every backend and can use a trigram index on PostgreSQL.
"""

from __future__ import annotations

# Columns shared by both engines; {json}, {tags}, {pk}, {bigint} differ per dialect.
_FILE_METAS = """
CREATE TABLE file_metas (
    pk {pk},
    file_meta_id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    dataset_version TEXT NOT NULL,
    uri TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_dir TEXT NOT NULL,
    file_name_folded TEXT NOT NULL,
    file_dir_folded TEXT NOT NULL,
    data_size {bigint},
    file_fingerprint TEXT,
    file_create_time {bigint},
    file_update_time {bigint},
    file_type TEXT,
    content_type TEXT,
    meta_attributes {json} NOT NULL DEFAULT {empty_obj},
    comment TEXT,
    description TEXT,
    description_folded TEXT,
    tags_ai {tags} NOT NULL DEFAULT {empty_tags},
    tags_user {tags} NOT NULL DEFAULT {empty_tags},
    tags_user_delete_ai {tags} NOT NULL DEFAULT {empty_tags},
    tags_all {tags} NOT NULL DEFAULT {empty_tags},
    tag_job_id TEXT,
    tag_update_time {bigint},
    semantic_index_job_id TEXT,
    semantic_index_update_time {bigint},
    sync_time {bigint},
    status TEXT NOT NULL DEFAULT 'ACTIVE',
    tagged_fingerprint TEXT,
    indexed_fingerprint TEXT,
    UNIQUE (dataset_id, dataset_version, uri)
)"""

_COMMON = [
    """CREATE TABLE datasets (
        dataset_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        uri TEXT NOT NULL,
        edition TEXT NOT NULL DEFAULT 'ADVANCED',
        description TEXT,
        create_time {bigint} NOT NULL,
        update_time {bigint} NOT NULL
    )""",
    """CREATE TABLE dataset_versions (
        dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
        version_name TEXT NOT NULL,
        version_number INTEGER NOT NULL,
        uri TEXT,
        source_type TEXT NOT NULL DEFAULT 'STORAGE',
        description TEXT,
        create_time {bigint} NOT NULL,
        update_time {bigint} NOT NULL,
        PRIMARY KEY (dataset_id, version_name)
    )""",
    _FILE_METAS,
    "CREATE INDEX file_metas_scope ON file_metas (dataset_id, dataset_version, status, pk)",
    "CREATE INDEX file_metas_update_time ON file_metas (dataset_id, dataset_version, file_update_time)",
    "CREATE INDEX file_metas_data_size ON file_metas (dataset_id, dataset_version, data_size)",
    "CREATE INDEX file_metas_tag_time ON file_metas (dataset_id, dataset_version, tag_update_time)",
    "CREATE INDEX file_metas_name ON file_metas (dataset_id, dataset_version, file_name)",
    """CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        dataset_id TEXT NOT NULL,
        dataset_version TEXT NOT NULL,
        job_action TEXT NOT NULL,
        job_mode TEXT NOT NULL DEFAULT 'Full',
        job_spec TEXT NOT NULL DEFAULT '{{}}',
        description TEXT,
        status TEXT NOT NULL DEFAULT 'Pending',
        total_file_count {bigint} NOT NULL DEFAULT 0,
        completed_file_count {bigint} NOT NULL DEFAULT 0,
        failed_file_count {bigint} NOT NULL DEFAULT 0,
        result TEXT NOT NULL DEFAULT '{{}}',
        create_time {bigint} NOT NULL,
        start_time {bigint},
        finish_time {bigint}
    )""",
    "CREATE INDEX jobs_scope ON jobs (dataset_id, dataset_version, create_time)",
    """CREATE TABLE job_logs (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        log_time {bigint} NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    )""",
    # Per-file outcome of a job, committed as it happens so a killed job can resume.
    """CREATE TABLE job_files (
        job_id TEXT NOT NULL,
        file_key TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        update_time {bigint} NOT NULL,
        PRIMARY KEY (job_id, file_key)
    )""",
    "CREATE INDEX job_files_state ON job_files (job_id, state)",
    """CREATE TABLE prompts (
        prompt_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        guide_prompt TEXT NOT NULL DEFAULT '',
        tag_definitions TEXT NOT NULL,
        description TEXT,
        revision INTEGER NOT NULL DEFAULT 1,
        create_time {bigint} NOT NULL,
        modify_time {bigint} NOT NULL
    )""",
]

_SQLITE_ONLY = [
    """CREATE TABLE file_tags (
        file_pk INTEGER NOT NULL,
        grp TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (grp, tag, file_pk)
    ) WITHOUT ROWID""",
    "CREATE INDEX file_tags_file ON file_tags (file_pk)",
    # Most scanned files have no tags yet: the WHEN clause keeps their inserts cheap.
    """CREATE TRIGGER file_tags_insert AFTER INSERT ON file_metas
    WHEN NEW.tags_ai != '[]' OR NEW.tags_user != '[]' OR NEW.tags_user_delete_ai != '[]'
    BEGIN
        INSERT OR IGNORE INTO file_tags (file_pk, grp, tag)
            SELECT NEW.pk, 'ai', value FROM json_each(NEW.tags_ai)
            UNION ALL SELECT NEW.pk, 'user', value FROM json_each(NEW.tags_user)
            UNION ALL SELECT NEW.pk, 'user-delete-ai-tags', value FROM json_each(NEW.tags_user_delete_ai)
            UNION ALL SELECT NEW.pk, 'all', value FROM json_each(NEW.tags_all);
    END""",
    """CREATE TRIGGER file_tags_update
    AFTER UPDATE OF tags_ai, tags_user, tags_user_delete_ai, tags_all ON file_metas BEGIN
        DELETE FROM file_tags WHERE file_pk = OLD.pk;
        INSERT OR IGNORE INTO file_tags (file_pk, grp, tag)
            SELECT NEW.pk, 'ai', value FROM json_each(NEW.tags_ai)
            UNION ALL SELECT NEW.pk, 'user', value FROM json_each(NEW.tags_user)
            UNION ALL SELECT NEW.pk, 'user-delete-ai-tags', value FROM json_each(NEW.tags_user_delete_ai)
            UNION ALL SELECT NEW.pk, 'all', value FROM json_each(NEW.tags_all);
    END""",
    """CREATE TRIGGER file_tags_delete AFTER DELETE ON file_metas BEGIN
        DELETE FROM file_tags WHERE file_pk = OLD.pk;
    END""",
]

# The server can afford an index for every range the DSL allows; the embedded default keeps
# its inserts cheap (each index costs a few microseconds per scanned file).
_POSTGRES_ONLY = [
    "CREATE INDEX file_metas_create_time ON file_metas (dataset_id, dataset_version, file_create_time)",
    "CREATE INDEX file_metas_sync_time ON file_metas (dataset_id, dataset_version, sync_time)",
    """CREATE INDEX file_metas_index_time
        ON file_metas (dataset_id, dataset_version, semantic_index_update_time)""",
    "CREATE INDEX file_metas_dir ON file_metas (dataset_id, dataset_version, file_dir)",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX file_metas_tags_ai ON file_metas USING GIN (tags_ai)",
    "CREATE INDEX file_metas_tags_user ON file_metas USING GIN (tags_user)",
    "CREATE INDEX file_metas_tags_all ON file_metas USING GIN (tags_all)",
    "CREATE INDEX file_metas_name_trgm ON file_metas USING GIN (file_name_folded gin_trgm_ops)",
    "CREATE INDEX file_metas_dir_trgm ON file_metas USING GIN (file_dir_folded gin_trgm_ops)",
    """CREATE INDEX file_metas_description_trgm
        ON file_metas USING GIN (description_folded gin_trgm_ops)""",
]

_TYPES = {
    "sqlite": {
        "pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bigint": "INTEGER",
        "json": "TEXT",
        "empty_obj": "'{}'",
        "tags": "TEXT",
        "empty_tags": "'[]'",
    },
    "postgres": {
        "pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "bigint": "BIGINT",
        "json": "JSONB",
        "empty_obj": "'{}'::jsonb",
        "tags": "TEXT[]",
        "empty_tags": "'{}'::text[]",
    },
}


def _v1(dialect: str) -> list[str]:
    extra = _SQLITE_ONLY if dialect == "sqlite" else _POSTGRES_ONLY
    return [s.format(**_TYPES[dialect]) for s in _COMMON] + extra


def _v2(dialect: str) -> list[str]:
    """Smart-tagging provenance: which job wrote which AI tags, so a job can be reverted.

    One row per (file, tag definition): a newer job with the same definition replaces the
    older one's tags; different definitions merge (PAI: ``ai`` holds the tags of all jobs).
    """
    t = _TYPES[dialect]
    return [
        f"""CREATE TABLE file_tag_sets (
            file_pk {t['bigint']} NOT NULL,
            prompt_id TEXT NOT NULL,
            job_id TEXT NOT NULL,
            tags TEXT NOT NULL,
            update_time {t['bigint']} NOT NULL,
            PRIMARY KEY (file_pk, prompt_id)
        )""",
        "CREATE INDEX file_tag_sets_job ON file_tag_sets (job_id)",
    ]


# The query compiler's ORDER BY key for SortBy (mmdm.query.compile.sql: NULL times sort as the
# oldest); an index serves it only when its expression is written the same way.
_SORT_KEY = "COALESCE({column}, -9223372036854775807)"


def _v3(dialect: str) -> list[str]:
    """Query support. SortBy pages walk an index in (time, pk) order instead of sorting every
    match; and rows written before the store folded an empty description to '' get it, so
    ``Description:''`` (compiled as ``LIKE '%%'`` on the folded column) finds them.

    ``status`` stays out of the order indexes on purpose: with it they match the scope
    (dataset, version, status) as well as ``file_metas_scope`` does, and the planner then
    counts through one of them, visiting rows in time order. The order indexes are
    PostgreSQL-only: on SQLite two expression indexes cost FileMetaBuild 15-40 % of its
    insert rate (bench/scan.py), and the embedded default sorts a SortBy query's matches.
    """
    backfill = ("UPDATE file_metas SET description_folded = '' "
                "WHERE description = '' AND description_folded IS NULL")
    if dialect == "sqlite":
        return [backfill]
    return [
        backfill,
        *(f"CREATE INDEX file_metas_{name}_order ON file_metas (dataset_id, dataset_version, "
          f"({_SORT_KEY.format(column=column)}), pk)"
          for name, column in (("update", "file_update_time"), ("create", "file_create_time"))),
    ]


def _v4(dialect: str) -> list[str]:
    """The folders of each version, for ``FileDir:'...'``.

    A version has far fewer folders than files, so a substring of the folder is matched
    against ``file_dirs`` first and the files are then found by folder equality; on
    PostgreSQL through an index that also holds the update time, so PAI's example (a folder
    substring within a date range) reads only the rows it returns instead of intersecting a
    bitmap of every file in the date range (bench/dsl.py, 10M files: count 480 -> 15 ms).

    Triggers add folders as files are written; nothing removes them, so the table may hold
    folders no file is in any more, which match no file.
    """
    table = """CREATE TABLE file_dirs (
        dataset_id TEXT NOT NULL,
        dataset_version TEXT NOT NULL,
        file_dir_folded TEXT NOT NULL,
        PRIMARY KEY (dataset_id, dataset_version, file_dir_folded)
    )"""
    backfill = ("INSERT INTO file_dirs SELECT DISTINCT dataset_id, dataset_version, "
                "file_dir_folded FROM file_metas WHERE file_dir_folded IS NOT NULL")
    if dialect == "sqlite":
        # Not INSERT OR IGNORE: an outer statement's conflict clause (REPLACE) would override it.
        add = ("INSERT INTO file_dirs SELECT NEW.dataset_id, NEW.dataset_version, "
               "NEW.file_dir_folded WHERE NOT EXISTS (SELECT 1 FROM file_dirs WHERE "
               "dataset_id = NEW.dataset_id AND dataset_version = NEW.dataset_version "
               "AND file_dir_folded = NEW.file_dir_folded)")
        return [table, backfill,
                f"""CREATE TRIGGER file_dirs_insert AFTER INSERT ON file_metas
                WHEN NEW.file_dir_folded IS NOT NULL BEGIN {add}; END""",
                f"""CREATE TRIGGER file_dirs_update
                AFTER UPDATE OF dataset_id, dataset_version, file_dir_folded ON file_metas
                WHEN NEW.file_dir_folded IS NOT NULL BEGIN {add}; END"""]
    # Statement triggers: one set-wise insert per statement (COPY and batched upserts too).
    return [
        table, backfill,
        "CREATE INDEX file_dirs_trgm ON file_dirs USING GIN (file_dir_folded gin_trgm_ops)",
        """CREATE FUNCTION file_dirs_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO file_dirs SELECT DISTINCT dataset_id, dataset_version, file_dir_folded
                FROM written WHERE file_dir_folded IS NOT NULL ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$""",
        *(f"""CREATE TRIGGER file_dirs_{event.lower()} AFTER {event} ON file_metas
            REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION file_dirs_add()"""
          for event in ("INSERT", "UPDATE")),
        # Folder equality, then the update time; status for counting from the index alone.
        """CREATE INDEX file_metas_dir_time ON file_metas
            (dataset_id, dataset_version, file_dir_folded, file_update_time) INCLUDE (status)""",
        "DROP INDEX file_metas_dir_trgm",  # substrings of folders now go through file_dirs
    ]


def _v5(dialect: str) -> list[str]:
    """Which revision of a tag definition tagged which content of a file, so Increment re-tags
    files after a new revision, for another definition, or after the file changed. Existing
    rows get the revision their job's spec names and the file's last tagged content."""
    revision = ("json_extract(j.job_spec, '$.promptRevision')" if dialect == "sqlite"
                else "(j.job_spec::jsonb ->> 'promptRevision')::integer")
    return [
        "ALTER TABLE file_tag_sets ADD COLUMN prompt_revision INTEGER",
        "ALTER TABLE file_tag_sets ADD COLUMN file_fingerprint TEXT",
        f"UPDATE file_tag_sets SET prompt_revision = (SELECT {revision} FROM jobs j "
        "WHERE j.job_id = file_tag_sets.job_id), file_fingerprint = (SELECT "
        "f.tagged_fingerprint FROM file_metas f WHERE f.pk = file_tag_sets.file_pk)",
    ]


def _v6(dialect: str) -> list[str]:
    """Jobs that can be found lost and taken over: a heartbeat the running job writes, and the
    owner that started it (an Airflow task instance), so that owner's retry resumes it."""
    t = _TYPES[dialect]
    return [
        f"ALTER TABLE jobs ADD COLUMN heartbeat_time {t['bigint']}",
        "ALTER TABLE jobs ADD COLUMN owner TEXT",
        "CREATE INDEX jobs_owner ON jobs (owner)",
    ]


def _v7(dialect: str) -> list[str]:
    """Work claims: on PostgreSQL, jobs of one version split its files by claiming each before
    sending it to the model (see ``claim_pending_files``). ``target`` names the work (the tag
    definition revision, or the index set); a claim holds while its job runs and beats."""
    t = _TYPES[dialect]
    return [
        f"""CREATE TABLE work_claims (
            target TEXT NOT NULL,
            file_pk {t['bigint']} NOT NULL,
            job_id TEXT NOT NULL,
            PRIMARY KEY (target, file_pk)
        )""",
        "CREATE INDEX work_claims_job ON work_claims (job_id)",
    ]


def _v8(dialect: str) -> list[str]:
    """Secrets the service generates for itself and every process of it shares, e.g. the
    key that signs NextTokens (a token one API replica issued is good at any other)."""
    return ["CREATE TABLE service_secrets (name TEXT PRIMARY KEY, secret TEXT NOT NULL)"]


def _v9(dialect: str) -> list[str]:
    """PAI's DatasetJobConfig: JobSpec defaults per dataset (``dataset_version`` NULL) or per
    version, for one kind of job (see ``job_configs``)."""
    t = _TYPES[dialect]
    return [
        f"""CREATE TABLE dataset_job_configs (
            config_id TEXT PRIMARY KEY,
            dataset_id TEXT NOT NULL,
            dataset_version TEXT,
            config_type TEXT NOT NULL,
            config TEXT NOT NULL,
            create_time {t['bigint']} NOT NULL,
            modify_time {t['bigint']} NOT NULL
        )""",
        "CREATE INDEX dataset_job_configs_dataset ON dataset_job_configs (dataset_id)",
    ]


def _v10(dialect: str) -> list[str]:
    """Vectors of a file's other contents (its description, for text-to-text and image-to-text
    search): one row per (index set, file) holding the text that was embedded, so Increment
    re-embeds a file whose description changed and drops the vector of one that lost it.
    The image index keeps PAI's SemanticIndexJobId / SemanticIndexUpdateTime columns."""
    t = _TYPES[dialect]
    return [
        f"""CREATE TABLE file_index_sets (
            index_set_id TEXT NOT NULL,
            file_pk {t['bigint']} NOT NULL,
            job_id TEXT NOT NULL,
            content TEXT NOT NULL,
            update_time {t['bigint']} NOT NULL,
            PRIMARY KEY (index_set_id, file_pk)
        )""",
        "CREATE INDEX file_index_sets_file ON file_index_sets (file_pk)",
    ]


# Each entry moves the schema from version i to i + 1. Append; never edit a released entry.
MIGRATIONS = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10]

SCHEMA_VERSION = len(MIGRATIONS)


def migration_statements(dialect: str, from_version: int) -> list[tuple[int, list[str]]]:
    """The statements that bring a database at ``from_version`` up to ``SCHEMA_VERSION``."""
    return [(i + 1, MIGRATIONS[i](dialect)) for i in range(from_version, SCHEMA_VERSION)]
