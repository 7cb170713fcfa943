-- Executions, their output and the catalog versions that were loaded.
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE executions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    action           TEXT    NOT NULL,
    params           TEXT    NOT NULL,          -- JSON, secrets masked
    requester        TEXT    NOT NULL,
    origin           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    node             TEXT,
    exit_code        INTEGER,
    result           TEXT,                      -- JSON
    error            TEXT,
    output_bytes     INTEGER NOT NULL DEFAULT 0,
    output_truncated INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);

-- Every listing walks one of these backwards by id, so its cost does not grow
-- with the history.
CREATE INDEX executions_by_status    ON executions (status, id);
CREATE INDEX executions_by_action    ON executions (action, id);
CREATE INDEX executions_by_requester ON executions (requester, id);
CREATE INDEX executions_by_origin    ON executions (origin, id);
CREATE INDEX executions_by_created   ON executions (created_at);
CREATE INDEX executions_by_node      ON executions (node, status) WHERE status = 'running';

CREATE TABLE output_chunks (
    execution_id INTEGER NOT NULL REFERENCES executions (id),
    seq          INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    stream       TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;

CREATE TABLE catalog_versions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    hash       TEXT    NOT NULL,
    git_commit TEXT,
    actions    INTEGER NOT NULL,
    node       TEXT    NOT NULL,
    loaded_at  INTEGER NOT NULL
);
