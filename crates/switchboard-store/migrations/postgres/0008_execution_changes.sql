-- Nodes hear of each other's executions: new output and every change of
-- status is announced on the channel `switchboard_executions` with the
-- execution's id (delivered at commit; PostgreSQL folds repeats of one
-- payload within a transaction). A node watching an execution another node
-- runs waits for these instead of polling. SQLite (one node) has none.
CREATE FUNCTION switchboard_output_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchboard_executions', d.execution_id::text)
    FROM (SELECT DISTINCT execution_id FROM added) AS d;
    RETURN NULL;
END;
$$;

CREATE TRIGGER output_chunks_announce
    AFTER INSERT ON output_chunks
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION switchboard_output_added();

CREATE FUNCTION switchboard_execution_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchboard_executions', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER executions_announce
    AFTER UPDATE OF status ON executions
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION switchboard_execution_changed();
