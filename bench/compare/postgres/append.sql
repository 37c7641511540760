-- W1, W2: one event per transaction, to a random one of the client's 1000 streams, expected
-- version any (as esbench's appends). :data is the 200-byte jsonb document.
\set s random(1, 1000)
SELECT write_message(gen_random_uuid(), 'bench-' || :client_id || '-' || :s, 'BenchEvent', :data::jsonb);
