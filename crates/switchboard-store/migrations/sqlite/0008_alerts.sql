-- Alerts received, one row per fingerprint (Alertmanager's, of the labels):
-- the latest state of each, kept across restarts.
CREATE TABLE alerts (
    fingerprint   TEXT PRIMARY KEY,     -- 16 hex digits
    labels        TEXT NOT NULL,        -- JSON object
    annotations   TEXT NOT NULL,        -- JSON object
    status        TEXT NOT NULL,        -- firing | resolved
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER,              -- firing: when it resolves unless renewed
    updated_at    INTEGER NOT NULL,
    source        TEXT NOT NULL,
    generator_url TEXT,
    dedup_key     TEXT
);
CREATE INDEX alerts_status ON alerts (status, ends_at);
CREATE INDEX alerts_dedup_key ON alerts (dedup_key) WHERE dedup_key IS NOT NULL;
