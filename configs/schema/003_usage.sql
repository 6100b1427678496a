-- llmproxy schema, version 3: usage records (SPEC §8) and spend.
--
-- Every request that reached routing leaves one row in llmproxy_usage.
-- Gateways write them in batches, each with an id, in one transaction per
-- group of batches: the ids go into llmproxy_usage_batches (ON CONFLICT DO
-- NOTHING), then only the batches whose id was new are COPYed into
-- llmproxy_usage, then llmproxy_usage_spend() adds their cost to the keys.
-- So a batch written twice (its commit was lost on the way back, or a
-- spill file was replayed twice) counts once, and the records table needs
-- no unique index: appending to it stays cheap.  request_id is not
-- indexed; to look requests up by id often, add
-- CREATE INDEX ON llmproxy_usage USING hash (request_id).

CREATE TABLE llmproxy_usage (
    request_id        uuid NOT NULL,
    created_at        timestamptz NOT NULL,
    key_hash          char(64),               -- NULL: the master key
    key_alias         text,
    model             text NOT NULL,          -- as the client asked
    deployment        text,                   -- "provider/model" answering
    interface         text NOT NULL,          -- the client's API style
    endpoint          text NOT NULL,          -- "chat/completions", ...
    stream            boolean NOT NULL,
    status            integer NOT NULL,       -- sent to the client
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost              double precision NOT NULL,  -- USD
    latency_ms        integer NOT NULL,
    ttfb_ms           integer,                -- NULL: no byte came back
    attempts          integer NOT NULL,       -- deployments tried
    fallbacks         integer NOT NULL,
    error             text                    -- the error code sent, if any
);

-- rows arrive in time order: a BRIN index is tiny and cheap to keep
CREATE INDEX llmproxy_usage_created_at ON llmproxy_usage
    USING brin (created_at);

CREATE INDEX llmproxy_keys_budget_reset_at ON llmproxy_keys (budget_reset_at)
    WHERE budget_reset_at IS NOT NULL;

-- a key whose budget period ended starts the next one with no spend
CREATE FUNCTION llmproxy_reset_budgets() RETURNS void LANGUAGE sql AS $$
    UPDATE llmproxy_keys
    SET spend = 0,
        budget_reset_at = budget_reset_at + make_interval(secs =>
            budget_duration_seconds * (floor(extract(epoch FROM
                now() - budget_reset_at) / budget_duration_seconds) + 1))
    WHERE budget_reset_at <= now() AND budget_duration_seconds > 0;
$$;

-- the batches written, by id, for as long as a spill file could come back
CREATE TABLE llmproxy_usage_batches (
    batch_id   uuid PRIMARY KEY,
    written_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX llmproxy_usage_batches_written_at
    ON llmproxy_usage_batches (written_at);

-- adds the cost of a transaction's new records to their keys (after
-- resetting the budgets whose period ended) and returns the keys' spend
CREATE FUNCTION llmproxy_usage_spend(keys text[], costs double precision[])
RETURNS TABLE (key_hash text, spend double precision)
LANGUAGE sql AS $$
    SELECT llmproxy_reset_budgets();
    DELETE FROM llmproxy_usage_batches
    WHERE written_at < now() - interval '30 days';
    -- char(64) like key_hash, so that the primary key finds the rows
    UPDATE llmproxy_keys k SET spend = k.spend + c.cost
    FROM unnest(keys::char(64)[], costs) AS c(key, cost)
    WHERE k.key_hash = c.key
    RETURNING k.key_hash::text, k.spend;
$$;
