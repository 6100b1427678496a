-- llmproxy schema, version 5: daily totals of the usage records, for the
-- dashboard (SPEC section 13), so that a year of records answers from
-- thousands of rows instead of millions.
--
-- One row per UTC day, key, model and deployment.  A statement trigger on
-- llmproxy_usage adds each statement's new rows to their day's totals, in
-- the transaction that writes them (the gateways' COPY of a group of
-- batches, a spill file replayed, a row inserted by hand): one aggregate
-- and one upsert per written group of batches, not per record, and the
-- totals cannot disagree with the records.
--
-- Latency percentiles come from a cumulative histogram: lat_lt_N counts
-- the requests faster than N ms (requests counts them all).  Cumulative
-- counts add up over keys and days with plain sum()s, one column each:
-- as fast as the other totals.

CREATE TABLE llmproxy_usage_daily (
    day                date NOT NULL,            -- UTC
    key_hash           text NOT NULL,            -- '': the master key
    model              text NOT NULL,            -- as the client asked
    deployment         text NOT NULL,            -- '': none answered
    key_alias          text,                     -- the last one seen
    requests           bigint NOT NULL,
    errors             bigint NOT NULL,          -- status >= 400
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost               double precision NOT NULL,
    latency_ms_sum     bigint NOT NULL,
    latency_ms_max     integer NOT NULL,
    lat_lt_25          bigint NOT NULL,
    lat_lt_50          bigint NOT NULL,
    lat_lt_100         bigint NOT NULL,
    lat_lt_200         bigint NOT NULL,
    lat_lt_300         bigint NOT NULL,
    lat_lt_500         bigint NOT NULL,
    lat_lt_750         bigint NOT NULL,
    lat_lt_1000        bigint NOT NULL,
    lat_lt_1500        bigint NOT NULL,
    lat_lt_2000        bigint NOT NULL,
    lat_lt_3000        bigint NOT NULL,
    lat_lt_5000        bigint NOT NULL,
    lat_lt_7500        bigint NOT NULL,
    lat_lt_10000       bigint NOT NULL,
    lat_lt_15000       bigint NOT NULL,
    lat_lt_20000       bigint NOT NULL,
    lat_lt_30000       bigint NOT NULL,
    lat_lt_60000       bigint NOT NULL,
    lat_lt_120000      bigint NOT NULL,
    PRIMARY KEY (day, key_hash, model, deployment)
) WITH (fillfactor = 70);       -- today's rows change with every batch:
                                -- room for HOT updates halves their cost

-- a virtual key's own days (the primary key serves everyone's)
CREATE INDEX llmproxy_usage_daily_key ON llmproxy_usage_daily (key_hash, day);

-- the histogram's bounds, in the order of its columns
CREATE FUNCTION llmproxy_usage_bounds() RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '{25,50,100,200,300,500,750,1000,1500,2000,3000,5000,7500,'
           '10000,15000,20000,30000,60000,120000}'::integer[]
$$;

-- the latency (ms) below which a fraction p of the requests fall, from the
-- cumulative counts lt (the bounds' columns, then all requests),
-- interpolated within its bucket; the last bucket ends at the slowest
CREATE FUNCTION llmproxy_usage_percentile(lt bigint[], lat_max integer,
    p double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round((lo + (hi - lo) * (target - prev)
                  / greatest(cum - prev, 1))::numeric, 1)::float8
    FROM (SELECT lt[i] AS cum, coalesce(lt[i - 1], 0) AS prev,
                 coalesce(b[i - 1], 0) AS lo,
                 coalesce(b[i], greatest(lat_max, b[i - 1])) AS hi,
                 greatest(p * lt[array_length(lt, 1)], 1) AS target, i
          FROM llmproxy_usage_bounds() AS b,
               generate_series(1, array_length(lt, 1)) AS i) s
    WHERE cum >= target
    ORDER BY i
    LIMIT 1
$$;

-- the rows of a statement, added to their days: in the primary key's
-- order, so that two writers lock the rows they share in the same order
CREATE FUNCTION llmproxy_usage_daily_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO llmproxy_usage_daily AS d
    SELECT (n.created_at AT TIME ZONE 'UTC')::date,
           coalesce(n.key_hash, ''), n.model, coalesce(n.deployment, ''),
           max(n.key_alias), count(*), count(*) FILTER (WHERE status >= 400),
           sum(n.prompt_tokens), sum(n.completion_tokens), sum(n.cost),
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
           count(*) FILTER (WHERE latency_ms < 120000)
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
        lat_lt_120000 = d.lat_lt_120000 + excluded.lat_lt_120000;
    RETURN NULL;
END $$;

CREATE TRIGGER llmproxy_usage_daily_add AFTER INSERT ON llmproxy_usage
    REFERENCING NEW TABLE AS llmproxy_usage_new
    FOR EACH STATEMENT EXECUTE FUNCTION llmproxy_usage_daily_add();

-- the records written before this migration
INSERT INTO llmproxy_usage_daily
SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce(key_hash, ''), model,
       coalesce(deployment, ''), max(key_alias), count(*),
       count(*) FILTER (WHERE status >= 400), sum(prompt_tokens),
       sum(completion_tokens), sum(cost), sum(latency_ms), max(latency_ms),
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
           count(*) FILTER (WHERE latency_ms < 120000)
FROM llmproxy_usage
GROUP BY 1, 2, 3, 4;
