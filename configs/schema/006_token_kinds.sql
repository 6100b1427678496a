-- llmproxy schema, version 6: every token kind, and unpriced requests.
--
-- prompt_tokens counts all input tokens, cached or not (OpenAI's way; for
-- Anthropic the gateway adds its cache reads and writes to input_tokens).
-- Of them, cache_read_tokens were read from the provider's prompt cache
-- and cache_creation_tokens written to it (Anthropic; of those,
-- cache_creation_1h_tokens with the 1-hour lifetime).  reasoning_tokens
-- (OpenAI's reasoning, Gemini's thoughts) are part of completion_tokens.
-- A request to a model priced neither in config.json nor in the shipped
-- price list has unpriced = true and cost NULL: never a silent $0.
-- Gateways write these columns by name; spill files written before them
-- are replayed into the first 19 columns, the new ones taking defaults.
--
-- The daily totals (schema 5) add the token kinds and count the unpriced
-- requests; their cost is that of the priced ones (an unpriced request's
-- NULL cost would otherwise make a day's sum NULL, and refuse the COPY).

ALTER TABLE llmproxy_usage
    ALTER COLUMN cost DROP NOT NULL,
    ADD COLUMN cache_read_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cache_creation_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cache_creation_1h_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN reasoning_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN unpriced boolean NOT NULL DEFAULT false;

ALTER TABLE llmproxy_usage_daily
    ADD COLUMN cache_read_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cache_creation_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN reasoning_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN unpriced bigint NOT NULL DEFAULT 0;      -- requests

CREATE OR REPLACE FUNCTION llmproxy_usage_daily_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO llmproxy_usage_daily AS d
    SELECT (n.created_at AT TIME ZONE 'UTC')::date,
           coalesce(n.key_hash, ''), n.model, coalesce(n.deployment, ''),
           max(n.key_alias), count(*), count(*) FILTER (WHERE status >= 400),
           sum(n.prompt_tokens), sum(n.completion_tokens),
           coalesce(sum(n.cost), 0),
           sum(n.latency_ms), max(n.latency_ms),
           count(*) FILTER (WHERE latency_ms < 25),
           count(*) FILTER (WHERE latency_ms < 50),
           count(*) FILTER (WHERE latency_ms < 100),
           count(*) FILTER (WHERE latency_ms < 200),
           count(*) FILTER (WHERE latency_ms < 300),
           count(*) FILTER (WHERE latency_ms < 500),
           count(*) FILTER (WHERE latency_ms < 750),
           count(*) FILTER (WHERE latency_ms < 1000),
           count(*) FILTER (WHERE latency_ms < 1500),
           count(*) FILTER (WHERE latency_ms < 2000),
           count(*) FILTER (WHERE latency_ms < 3000),
           count(*) FILTER (WHERE latency_ms < 5000),
           count(*) FILTER (WHERE latency_ms < 7500),
           count(*) FILTER (WHERE latency_ms < 10000),
           count(*) FILTER (WHERE latency_ms < 15000),
           count(*) FILTER (WHERE latency_ms < 20000),
           count(*) FILTER (WHERE latency_ms < 30000),
           count(*) FILTER (WHERE latency_ms < 60000),
           count(*) FILTER (WHERE latency_ms < 120000),
           sum(n.cache_read_tokens), sum(n.cache_creation_tokens),
           sum(n.reasoning_tokens), count(*) FILTER (WHERE n.unpriced)
    FROM llmproxy_usage_new n
    GROUP BY 1, 2, 3, 4
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
    RETURN NULL;
END $$;
