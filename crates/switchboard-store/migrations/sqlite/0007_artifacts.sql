-- Files an execution produced (a rendered graph), stored with its end.
CREATE TABLE artifacts (
    execution_id INTEGER NOT NULL REFERENCES executions (id),
    name         TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content      BLOB NOT NULL,
    PRIMARY KEY (execution_id, name)
);
