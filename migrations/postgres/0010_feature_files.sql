-- 0010 feature files (Postgres): blobs features keep, and the key that signs links to them.
-- Keep in step with migrations/sqlite/0010_feature_files.sql.

-- Files a feature keeps in a guild (transcripts, copied attachments).
CREATE TABLE feature_files (
    guild_id      BIGINT  NOT NULL,
    feature_id    TEXT    NOT NULL,
    name          TEXT    COLLATE "C" NOT NULL,
    content_type  TEXT    NOT NULL,
    size          BIGINT  NOT NULL CHECK (size >= 0),
    data          BYTEA   NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, feature_id, name)
);

-- What each (guild, feature) keeps in files, exact in the same transaction as every
-- write to feature_files, so a quota check reads one locked row.
CREATE TABLE feature_files_usage (
    guild_id    BIGINT  NOT NULL,
    feature_id  TEXT    NOT NULL,
    bytes       BIGINT  NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    files       BIGINT  NOT NULL DEFAULT 0 CHECK (files >= 0),
    PRIMARY KEY (guild_id, feature_id)
);

-- Secrets the host makes once and every process shares (the key that signs file
-- links). Never shown by any route or log.
CREATE TABLE host_secrets (
    name        TEXT    NOT NULL PRIMARY KEY,
    secret      BYTEA   NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
