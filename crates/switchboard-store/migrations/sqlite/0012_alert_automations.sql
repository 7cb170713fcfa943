-- Runs of automation rules that alerts asked for: one per rule and firing
-- episode of an alert (its start), due after the rule's delay, then run,
-- skipped (resolved meanwhile, rule gone) or failed (denied, bad params).
CREATE TABLE alert_automations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rule         TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    starts_at    INTEGER NOT NULL,
    state        TEXT NOT NULL,        -- pending | ran | skipped | failed
    due_at       INTEGER NOT NULL,
    execution_id INTEGER,
    reason       TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (rule, fingerprint, starts_at)
);
CREATE INDEX alert_automations_due ON alert_automations (state, due_at);
CREATE INDEX alert_automations_alert ON alert_automations (fingerprint, id);
