-- Door states (SQLite: 0019). The live state of each front door, per node,
-- for the auditor's report: whether its long-lived connection (IRC, XMPP,
-- Matrix, Slack Socket Mode, a Mattermost websocket) is up, since when and
-- what it last said, and when the door last heard from a caller.
-- `connected` is NULL for doors without a connection of their own.
CREATE TABLE door_states (
    door          TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    connected     BOOLEAN,
    changed_at    BIGINT,
    detail        TEXT,
    last_event_at BIGINT,
    PRIMARY KEY (door, node)
);
