-- The live state of each front door, per node, for the auditor's report:
-- whether its long-lived connection (IRC, XMPP, Matrix, Slack Socket Mode,
-- a Mattermost websocket) is up, since when and what it last said, and
-- when the door last heard from a caller. `connected` is NULL for doors
-- without a connection of their own (the API, webhooks).
CREATE TABLE door_states (
    door          TEXT    NOT NULL,
    node          TEXT    NOT NULL,
    connected     INTEGER,
    changed_at    INTEGER,
    detail        TEXT,
    last_event_at INTEGER,
    PRIMARY KEY (door, node)
);
