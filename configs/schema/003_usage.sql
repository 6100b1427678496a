-- llmproxy schema, version 3: usage records (SPEC §8) and spend.
--
-- Every request that reached routing leaves one row in llmproxy_usage.
-- Gateways write them in batches: COPY into the session's temporary table
-- llmproxy_usage_in, then SELECT * FROM llmproxy_usage_ingest(), in one
-- transaction.  A batch written twice (its commit was lost on the way
-- back, or a spill file was replayed twice) is counted once: request_id is
-- the primary key, and only the rows inserted add to the keys' spend.

CREATE TABLE llmproxy_usage (
    request_id        uuid PRIMARY KEY,
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

-- moves a batch from llmproxy_usage_in to llmproxy_usage and adds the cost
-- of the rows inserted to their keys; returns, per key of the batch, the
-- batch's cost and the key's spend now
CREATE FUNCTION llmproxy_usage_ingest()
RETURNS TABLE (batch_key char(64), batch_cost double precision,
               key_spend double precision)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM llmproxy_reset_budgets();

    RETURN QUERY
    WITH batch AS (
        SELECT i.key_hash AS k, sum(i.cost) AS c FROM llmproxy_usage_in i
        WHERE i.key_hash IS NOT NULL GROUP BY i.key_hash
    ), ins AS (
        INSERT INTO llmproxy_usage SELECT * FROM llmproxy_usage_in
        ON CONFLICT (request_id) DO NOTHING
        RETURNING llmproxy_usage.key_hash AS k, llmproxy_usage.cost AS c
    ), added AS (
        SELECT ins.k, sum(ins.c) AS c FROM ins
        WHERE ins.k IS NOT NULL GROUP BY ins.k
    ), upd AS (
        UPDATE llmproxy_keys u SET spend = u.spend + added.c
        FROM added WHERE u.key_hash = added.k AND added.c <> 0
        RETURNING u.key_hash AS k, u.spend AS s
    )
    SELECT batch.k, batch.c, upd.s
    FROM batch LEFT JOIN upd ON upd.k = batch.k;
END $$;
