-- W4's table: exactly :n rows at global positions 1..:n, over 1000 streams, then vacuumed
-- (hint bits and visibility map set) so that the read measures reading, not cleanup.
TRUNCATE messages RESTART IDENTITY;
INSERT INTO messages (stream_name, position, type, data)
  SELECT 'prefill-' || (g % 1000), g / 1000, 'BenchEvent', :'data'::jsonb FROM generate_series(0, :n - 1) AS g;
VACUUM ANALYZE messages;
CHECKPOINT;
