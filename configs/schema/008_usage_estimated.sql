-- llmproxy schema, version 8: usage that was estimated (SPEC §8).
--
-- A stream the client leaves is read on for a bounded time
-- (llmproxy_stream_drain_timeout) to get the provider's usage; when it
-- never comes (the drain ran out, or the provider cut or stalled the
-- stream), the output tokens are estimated from the text streamed (about
-- four bytes a token) and the input from the request body when its count
-- is missing too.  Such a record says so here, so reports can tell
-- billed-as-reported from billed-as-estimated.  The gateway writes this
-- column last in its COPY tuples: it must stay the table's last column.

ALTER TABLE llmproxy_usage
    ADD COLUMN usage_estimated boolean NOT NULL DEFAULT false;
