-- Inbound webhooks: the delivery ids already accepted, per hook, kept for
-- the hook's replay window so that a replayed request is refused even
-- after a restart.
CREATE TABLE hook_deliveries (
    hook        TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (hook, delivery_id)
);
CREATE INDEX hook_deliveries_age ON hook_deliveries (hook, received_at);
