-- Acknowledgements: someone is on it. The subject is `alert:<fingerprint>`
-- or `group:<receiver>:<group key>`; an alert's ends when it resolves, a
-- group's when the group ends.
CREATE TABLE alert_acks (
    subject  TEXT PRIMARY KEY,
    acked_by TEXT NOT NULL,
    acked_at INTEGER NOT NULL,
    comment  TEXT NOT NULL
);
