-- Workflows: each step's attempt is an execution linked to the workflow's
-- own execution, and the run's state (steps, attempts, answers, published
-- variables) is one JSON document, rewritten after every change, so that a
-- workflow resumes where it was after a restart.

ALTER TABLE executions ADD COLUMN parent_id INTEGER REFERENCES executions (id);
ALTER TABLE executions ADD COLUMN step TEXT;       -- `name`, `name[item]`, with `#attempt`
CREATE INDEX executions_by_parent ON executions (parent_id, id) WHERE parent_id IS NOT NULL;

CREATE TABLE workflow_runs (
    execution_id INTEGER PRIMARY KEY REFERENCES executions (id),
    state        TEXT    NOT NULL,                 -- JSON
    updated_at   INTEGER NOT NULL
);
