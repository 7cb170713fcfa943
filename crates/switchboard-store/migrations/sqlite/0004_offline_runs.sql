-- Offline runs pushed into the audit log, so that a second push of the same
-- spool adds nothing.
CREATE TABLE offline_runs (
    id        TEXT    PRIMARY KEY,
    pushed_by TEXT    NOT NULL,
    pushed_at INTEGER NOT NULL
) WITHOUT ROWID;
