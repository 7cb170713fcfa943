-- Aggregation groups, what each receiver's integration was last told of a
-- group (the notification log), and the deliveries of notifications with
-- their attempts: kept so that a restart neither forgets a group's timers
-- nor the resolved notice owed for an alert it told of.
CREATE TABLE alert_groups (
    group_key     TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    labels        TEXT NOT NULL,        -- JSON object: the group labels
    route         TEXT NOT NULL,        -- the route's dotted key in alerts.toml
    created_at    INTEGER NOT NULL,
    next_flush_at INTEGER NOT NULL,
    flushed       INTEGER NOT NULL,     -- 0 until its first flush
    PRIMARY KEY (group_key, receiver)
);

CREATE TABLE alert_notification_log (
    group_key   TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    integration TEXT NOT NULL,          -- webhook[0], email[1], …
    firing      TEXT NOT NULL,          -- JSON array of fingerprints
    resolved    TEXT NOT NULL,          -- JSON array of fingerprints
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (group_key, receiver, integration)
);

CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key       TEXT NOT NULL,
    receiver        TEXT NOT NULL,
    integration     TEXT NOT NULL,
    status          TEXT NOT NULL,      -- pending | delivered | failed
    notification    TEXT NOT NULL,      -- JSON: what is sent
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX alert_deliveries_group ON alert_deliveries (group_key, receiver, id);

-- Silences: matchers (Alertmanager's syntax) muting alerts for a time.
CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_at);
