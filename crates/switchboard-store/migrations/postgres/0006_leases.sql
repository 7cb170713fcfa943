-- Leases (SQLite: 0017). A running execution's lease is renewed by its node's heartbeat;
-- one that ran out belongs to a node that stopped, and the leader takes it
-- over (lost, queued again, or a workflow resumed). Named leases (`leader`)
-- are held by one node at a time; `token` grows at each change of holder,
-- so a deposed holder's work can be told from its successor's.
ALTER TABLE executions ADD COLUMN lease_expires_at BIGINT;
CREATE INDEX executions_by_lease ON executions (lease_expires_at) WHERE status = 'running';

CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    token       BIGINT  NOT NULL,
    acquired_at BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
