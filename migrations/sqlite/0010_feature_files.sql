-- 0010 feature files (SQLite): blobs features keep, and the key that signs links to them.
-- Keep in step with migrations/postgres/0010_feature_files.sql.

-- Files a feature keeps in a guild (transcripts, copied attachments).
CREATE TABLE feature_files (
    guild_id      BIGINT  NOT NULL,
    feature_id    TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          BIGINT  NOT NULL CHECK (size >= 0),
    data          BLOB    NOT NULL,
    created_at    TEXT    NOT NULL,
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
    secret      BLOB    NOT NULL,
    created_at  TEXT    NOT NULL
);
