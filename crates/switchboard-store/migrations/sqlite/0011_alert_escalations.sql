-- Where each group's escalation chain stands, so a restart neither pages
-- twice nor forgets a page owed. It ends with its group.
CREATE TABLE alert_escalations (
    group_key  TEXT NOT NULL,
    receiver   TEXT NOT NULL,
    chain      TEXT NOT NULL,
    state      TEXT NOT NULL,      -- running | finished | stopped
    step       INTEGER NOT NULL,
    round      INTEGER NOT NULL,
    due_at     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (group_key, receiver)
);
