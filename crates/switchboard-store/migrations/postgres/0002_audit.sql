-- The audit log: append-only, each record hash-chained to the previous one.
-- Appends from every node are serialized (the appending transaction locks
-- this table against other appends), so the log stays one chain.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    ts        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    origin    TEXT   NOT NULL,
    kind      TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    outcome   TEXT   NOT NULL,
    detail    TEXT   NOT NULL,   -- JSON, as hashed
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

CREATE INDEX audit_log_by_ts ON audit_log (ts);

-- Offline runs pushed into the audit log, so that a second push of the same
-- spool adds nothing.
CREATE TABLE offline_runs (
    id        TEXT   PRIMARY KEY,
    pushed_by TEXT   NOT NULL,
    pushed_at BIGINT NOT NULL
);
