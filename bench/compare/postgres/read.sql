-- W4: one page of 1000 messages by global position after :last (keyset paging, as a Message
-- DB reader of $all does), every column to the client. The table holds exactly :total rows
-- at positions 1..:total (prefill.sql), so the next page starts 1000 further on, and the
-- reader wraps to 0 at the end: every page is full. Rows/s = transactions/s x 1000.
SELECT global_position, position, time, stream_name, type, data, metadata, id
  FROM messages WHERE global_position > :last ORDER BY global_position LIMIT 1000;
\set last (:last + 1000) % :total
