-- Message DB's shape (message-db.eventide-project.org): one messages table with a global
-- position, the stream's own position, and write_message, which serialises the writers of a
-- stream with an advisory lock, checks the expected version and inserts at version + 1.
-- Message DB's category index is left out: esd has no categories to compare it with.
CREATE TABLE messages (
  global_position bigserial PRIMARY KEY,
  position bigint NOT NULL,
  time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
  stream_name text NOT NULL,
  type text NOT NULL,
  data jsonb,
  metadata jsonb,
  id uuid NOT NULL DEFAULT gen_random_uuid()
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_stream ON messages (stream_name, position);

-- Returns the position written; raises on a wrong expected version (NULL: any version).
CREATE FUNCTION write_message(_id uuid, _stream_name text, _type text, _data jsonb,
                              _metadata jsonb DEFAULT NULL, _expected_version bigint DEFAULT NULL)
RETURNS bigint AS $$
DECLARE
  _version bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(_stream_name));
  SELECT coalesce(max(position), -1) INTO _version FROM messages WHERE stream_name = _stream_name;
  IF _expected_version IS NOT NULL AND _expected_version <> _version THEN
    RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
      _expected_version, _stream_name, _version;
  END IF;
  INSERT INTO messages (id, stream_name, position, type, data, metadata)
    VALUES (_id, _stream_name, _version + 1, _type, _data, _metadata);
  RETURN _version + 1;
END;
$$ LANGUAGE plpgsql;
