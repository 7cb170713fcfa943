-- Two-person rule: the rule an execution waits under (JSON, from its action
-- or from the policy that demanded it), when the request lapses, and the
-- approvals and rejections it received.
ALTER TABLE executions ADD COLUMN approval_rule TEXT;
ALTER TABLE executions ADD COLUMN approval_expires_at INTEGER;

CREATE INDEX executions_awaiting ON executions (approval_expires_at)
    WHERE status = 'awaiting_approval';

CREATE TABLE approvals (
    id           INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES executions (id),
    approver     TEXT NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    reason       TEXT,
    origin       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    UNIQUE (execution_id, approver)
);
