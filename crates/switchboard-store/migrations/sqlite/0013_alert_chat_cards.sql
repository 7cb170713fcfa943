-- The chat message that shows an alert group in a room, one per group and
-- receiver integration: edited in place as the group changes, later
-- notices (acknowledgements, automation runs) posted in its thread.
CREATE TABLE alert_chat_cards (
    group_key    TEXT NOT NULL,
    receiver     TEXT NOT NULL,
    integration  TEXT NOT NULL,
    platform     TEXT NOT NULL,
    room         TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    thread       TEXT,
    -- The notification the message shows (Alertmanager's webhook body),
    -- to draw it again when only its acknowledgement changes.
    notification TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (group_key, receiver, integration)
);
