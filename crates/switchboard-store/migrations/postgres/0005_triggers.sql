-- Schedules: each claimed tick, by whichever node claimed it first (the
-- primary key makes a tick run once), and how it went; the newest tick of
-- a schedule is where a restart counts missed ticks from. Inbound
-- webhooks: the delivery ids already accepted, kept for the hook's replay
-- window. (SQLite: 0015 and 0016.)
CREATE TABLE schedule_ticks (
    schedule     TEXT   NOT NULL,
    tick         BIGINT NOT NULL,   -- microseconds since the epoch
    node         TEXT   NOT NULL,
    claimed_at   BIGINT NOT NULL,
    outcome      TEXT   NOT NULL,   -- claimed | submitted | skipped | refused | failed
    execution_id BIGINT,
    reason       TEXT,
    PRIMARY KEY (schedule, tick)
);

CREATE TABLE hook_deliveries (
    hook        TEXT   NOT NULL,
    delivery_id TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (hook, delivery_id)
);
CREATE INDEX hook_deliveries_age ON hook_deliveries (hook, received_at);
