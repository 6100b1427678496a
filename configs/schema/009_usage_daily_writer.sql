-- llmproxy schema, version 9: cheaper usage records (issue 13).
--
-- 1. The gateways add the daily totals themselves.
--
-- The statement trigger of schema 5 aggregated every COPY's rows again in
-- PostgreSQL: about 0.4 us of its CPU per record (of ~3), for totals the
-- gateway can add up as it reads its batches back for the keys' cost.  A
-- gateway of this version now sends them, one row per day, key, model and
-- deployment of a transaction, to llmproxy_usage_daily_merge(), and tells
-- the trigger so with SET LOCAL llmproxy.usage_daily = 'writer' in the
-- same transaction.  Every other insert (by hand, an import, a gateway of
-- an earlier version, a spill file in COPY's text format) still goes
-- through the trigger: the totals cannot miss a row either way, and no row
-- is counted twice.
--
-- 2. The functions a writer's transaction calls are PL/pgSQL: an SQL
-- function's statements are parsed and planned at every call, a
-- PL/pgSQL one's plans are kept for the session.  llmproxy_usage_spend()
-- so cost ~0.3 ms of PostgreSQL's CPU per transaction (0.6 us a record
-- in transactions of 500), now mostly gone; same results.

CREATE FUNCTION llmproxy_usage_daily_merge(rows json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO llmproxy_usage_daily AS d (day, key_hash, model,
        deployment, key_alias, requests, errors, prompt_tokens,
        completion_tokens, cost, latency_ms_sum, latency_ms_max,
        lat_lt_25, lat_lt_50, lat_lt_100, lat_lt_200, lat_lt_300,
        lat_lt_500, lat_lt_750, lat_lt_1000, lat_lt_1500, lat_lt_2000,
        lat_lt_3000, lat_lt_5000, lat_lt_7500, lat_lt_10000, lat_lt_15000,
        lat_lt_20000, lat_lt_30000, lat_lt_60000, lat_lt_120000,
        cache_read_tokens, cache_creation_tokens, reasoning_tokens,
        unpriced)
    SELECT r.day, r.key_hash, r.model, r.deployment, r.key_alias,
           r.requests, r.errors, r.prompt_tokens, r.completion_tokens,
           r.cost, r.latency_ms_sum, r.latency_ms_max,
           r.lt[1], r.lt[2], r.lt[3], r.lt[4], r.lt[5], r.lt[6], r.lt[7],
           r.lt[8], r.lt[9], r.lt[10], r.lt[11], r.lt[12], r.lt[13],
           r.lt[14], r.lt[15], r.lt[16], r.lt[17], r.lt[18], r.lt[19],
           r.cache_read_tokens, r.cache_creation_tokens,
           r.reasoning_tokens, r.unpriced
    FROM json_to_recordset(rows) AS r (day date, key_hash text,
        model text, deployment text, key_alias text, requests bigint,
        errors bigint, prompt_tokens bigint, completion_tokens bigint,
        cost double precision, latency_ms_sum bigint,
        latency_ms_max integer, lt bigint[], cache_read_tokens bigint,
        cache_creation_tokens bigint, reasoning_tokens bigint,
        unpriced bigint)
    -- the primary key's order, as the trigger: two writers lock the rows
    -- they share in the same order
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, key_hash, model, deployment) DO UPDATE SET
        key_alias = coalesce(excluded.key_alias, d.key_alias),
        requests = d.requests + excluded.requests,
        errors = d.errors + excluded.errors,
        prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = d.completion_tokens + excluded.completion_tokens,
        cost = d.cost + excluded.cost,
        latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
        latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max),
        lat_lt_25 = d.lat_lt_25 + excluded.lat_lt_25,
        lat_lt_50 = d.lat_lt_50 + excluded.lat_lt_50,
        lat_lt_100 = d.lat_lt_100 + excluded.lat_lt_100,
        lat_lt_200 = d.lat_lt_200 + excluded.lat_lt_200,
        lat_lt_300 = d.lat_lt_300 + excluded.lat_lt_300,
        lat_lt_500 = d.lat_lt_500 + excluded.lat_lt_500,
        lat_lt_750 = d.lat_lt_750 + excluded.lat_lt_750,
        lat_lt_1000 = d.lat_lt_1000 + excluded.lat_lt_1000,
        lat_lt_1500 = d.lat_lt_1500 + excluded.lat_lt_1500,
        lat_lt_2000 = d.lat_lt_2000 + excluded.lat_lt_2000,
        lat_lt_3000 = d.lat_lt_3000 + excluded.lat_lt_3000,
        lat_lt_5000 = d.lat_lt_5000 + excluded.lat_lt_5000,
        lat_lt_7500 = d.lat_lt_7500 + excluded.lat_lt_7500,
        lat_lt_10000 = d.lat_lt_10000 + excluded.lat_lt_10000,
        lat_lt_15000 = d.lat_lt_15000 + excluded.lat_lt_15000,
        lat_lt_20000 = d.lat_lt_20000 + excluded.lat_lt_20000,
        lat_lt_30000 = d.lat_lt_30000 + excluded.lat_lt_30000,
        lat_lt_60000 = d.lat_lt_60000 + excluded.lat_lt_60000,
        lat_lt_120000 = d.lat_lt_120000 + excluded.lat_lt_120000,
        cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
        cache_creation_tokens = d.cache_creation_tokens
                                + excluded.cache_creation_tokens,
        reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
        unpriced = d.unpriced + excluded.unpriced;
END $$;

-- the writer's transactions skip the trigger; every other insert keeps it
DROP TRIGGER llmproxy_usage_daily_add ON llmproxy_usage;

CREATE TRIGGER llmproxy_usage_daily_add AFTER INSERT ON llmproxy_usage
    REFERENCING NEW TABLE AS llmproxy_usage_new
    FOR EACH STATEMENT
    WHEN (current_setting('llmproxy.usage_daily', true)
          IS DISTINCT FROM 'writer')
    EXECUTE FUNCTION llmproxy_usage_daily_add();

-- schema 3's functions, the same statements in PL/pgSQL
CREATE OR REPLACE FUNCTION llmproxy_reset_budgets() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE llmproxy_keys
    SET spend = 0,
        budget_reset_at = budget_reset_at + make_interval(secs =>
            budget_duration_seconds * (floor(extract(epoch FROM
                now() - budget_reset_at) / budget_duration_seconds) + 1))
    WHERE budget_reset_at <= now() AND budget_duration_seconds > 0;
END $$;

CREATE OR REPLACE FUNCTION llmproxy_usage_spend(keys text[],
    costs double precision[])
RETURNS TABLE (key_hash text, spend double precision)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM llmproxy_reset_budgets();
    DELETE FROM llmproxy_usage_batches
    WHERE written_at < now() - interval '30 days';
    -- char(64) like key_hash, so that the primary key finds the rows
    RETURN QUERY
    UPDATE llmproxy_keys k SET spend = k.spend + c.cost
    FROM unnest(keys::char(64)[], costs) AS c(key, cost)
    WHERE k.key_hash = c.key
    RETURNING k.key_hash::text, k.spend;
END $$;
