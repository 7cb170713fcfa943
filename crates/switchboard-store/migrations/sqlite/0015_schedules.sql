-- Schedules: each tick of a schedule that was claimed, by whichever
-- process claimed it first (the primary key makes a tick run once, even
-- with two processes on one database), and how it went. The newest tick of
-- a schedule is also where a restart counts missed ticks from.
CREATE TABLE schedule_ticks (
    schedule     TEXT NOT NULL,
    tick         INTEGER NOT NULL,   -- microseconds since the epoch
    node         TEXT NOT NULL,
    claimed_at   INTEGER NOT NULL,
    outcome      TEXT NOT NULL,      -- claimed | submitted | skipped | refused | failed
    execution_id INTEGER,
    reason       TEXT,
    PRIMARY KEY (schedule, tick)
);
