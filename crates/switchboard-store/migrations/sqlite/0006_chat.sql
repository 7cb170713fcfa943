-- Chat: identities linked to principals, the one-time codes that link them
-- (only their SHA-256 is kept), and the deliveries already answered (so a
-- platform's retry of the same event runs nothing twice).
CREATE TABLE chat_links (
    chat_identity TEXT PRIMARY KEY,     -- slack:T01/U123
    principal     TEXT NOT NULL,
    linked_at     INTEGER NOT NULL
);
CREATE INDEX chat_links_principal ON chat_links (principal);

CREATE TABLE chat_link_codes (
    code_hash     TEXT PRIMARY KEY,
    chat_identity TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
);

CREATE TABLE chat_deliveries (
    platform    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (platform, delivery_id)
);
CREATE INDEX chat_deliveries_age ON chat_deliveries (received_at);
