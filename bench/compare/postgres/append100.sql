-- W3: one transaction of 100 write_message calls to one of the client's streams. The calls
-- are one statement (one round trip, as esd's append of 100 events is one call); each call
-- takes the stream's lock, reads the version its predecessor wrote and inserts after it.
\set s random(1, 1000)
BEGIN;
SELECT write_message(gen_random_uuid(), 'bench-' || :client_id || '-' || :s, 'BenchEvent', :data::jsonb)
  FROM generate_series(1, 100);
COMMIT;
