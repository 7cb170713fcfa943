-- (SQLite: 0018.) Nodes learn of the alerts other nodes received by the time
-- each was last received.
CREATE INDEX alerts_by_update ON alerts (updated_at);
