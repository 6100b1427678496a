-- llmproxy schema, version 10: usage records in packs (issue 13).
--
-- A row per record cost PostgreSQL about 3 us of CPU a record, nearly
-- all of it per row: the binary COPY's 25 fields, the tuple, its slot
-- and its WAL record.  The gateways now write their records in packs:
-- one row holds up to 16 records as lines of text, small enough to stay
-- inside the row (no TOAST, no compression), with the texts the records
-- repeat (key hash, alias, model, deployment, interface, endpoint, error
-- code) once per pack in an array the lines refer to by number.  About
-- 100 bytes a record instead of 300, and one row for 16: measured at
-- 0.3-0.5 us a record instead of 3.
--
-- llmproxy_usage stays what readers query: a view with the same columns
-- as the table it replaces, over both
--   llmproxy_usage_rows   that table, renamed: one row per record, as
--                         inserted by hand, by imports, by a restore of
--                         an older backup, by an older gateway or an old
--                         spill file (its daily-totals trigger stays);
--   llmproxy_usage_packs  the gateways' records.
-- Inserting into the view (INSERT or COPY) inserts into
-- llmproxy_usage_rows.  A report over a period should call
-- llmproxy_usage_between(since, before): the same rows, with only the
-- packs and rows of the period read (a query on the view decodes every
-- pack).
--
-- A pack's line, fields separated by tabs, empty for NULL:
--    1 request_id        32 hex digits
--    2 created_at        microseconds after the pack's first_at
--    3 key_hash          number of a text in strings (1-based)
--    4 key_alias         number of a text
--    5 model             number of a text
--    6 deployment        number of a text
--    7 interface         number of a text
--    8 endpoint          number of a text
--    9 stream            0 or 1
--   10 status, 11 prompt_tokens, 12 completion_tokens, 13 total_tokens
--   14 cost              a float8 that reads back exactly: the gateways
--                        write C99 hexadecimal (0x1.8p-3, as float8in's
--                        strtod() reads it), llmproxy_usage_pack_rows()
--                        decimal
--   15 latency_ms, 16 ttfb_ms, 17 attempts, 18 fallbacks
--   19 error             number of a text
--   20 cache_read_tokens, 21 cache_creation_tokens,
--   22 cache_creation_1h_tokens, 23 reasoning_tokens
--   24 unpriced, 25 usage_estimated   0 or 1
-- Lines hold only digits, hex digits, '.', '-', '+', 'e', 'p', 'x', tabs
-- and "NaN"/"Infinity": the texts, which may hold anything, are array
-- elements.

ALTER TABLE llmproxy_usage RENAME TO llmproxy_usage_rows;
ALTER INDEX llmproxy_usage_created_at RENAME TO llmproxy_usage_rows_created_at;

CREATE TABLE llmproxy_usage_packs (
    first_at   timestamptz NOT NULL,     -- the earliest created_at in it
    last_at    timestamptz NOT NULL,     -- the latest
    n          integer NOT NULL,         -- records
    strings    text[] NOT NULL,          -- the texts the lines refer to
    records    text NOT NULL             -- n lines, '\n' between them
);

-- packs arrive in time order, as the rows did
CREATE INDEX llmproxy_usage_packs_at ON llmproxy_usage_packs
    USING brin (first_at, last_at);

-- the records of a period [since, before), from both tables
CREATE FUNCTION llmproxy_usage_between(since timestamptz,
    before timestamptz)
RETURNS TABLE (request_id uuid, created_at timestamptz, key_hash char(64),
    key_alias text, model text, deployment text, interface text,
    endpoint text, stream boolean, status integer, prompt_tokens bigint,
    completion_tokens bigint, total_tokens bigint, cost double precision,
    latency_ms integer, ttfb_ms integer, attempts integer,
    fallbacks integer, error text, cache_read_tokens bigint,
    cache_creation_tokens bigint, cache_creation_1h_tokens bigint,
    reasoning_tokens bigint, unpriced boolean, usage_estimated boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.request_id, r.created_at, r.key_hash, r.key_alias, r.model,
           r.deployment, r.interface, r.endpoint, r.stream, r.status,
           r.prompt_tokens, r.completion_tokens, r.total_tokens, r.cost,
           r.latency_ms, r.ttfb_ms, r.attempts, r.fallbacks, r.error,
           r.cache_read_tokens, r.cache_creation_tokens,
           r.cache_creation_1h_tokens, r.reasoning_tokens, r.unpriced,
           r.usage_estimated
    FROM llmproxy_usage_rows r
    WHERE r.created_at >= $1 AND r.created_at < $2
  UNION ALL
    SELECT u.* FROM (
        SELECT f[1]::uuid,
               p.first_at + f[2]::bigint * interval '1 microsecond',
               p.strings[nullif(f[3], '')::integer]::char(64),
               p.strings[nullif(f[4], '')::integer],
               p.strings[f[5]::integer],
               p.strings[nullif(f[6], '')::integer],
               p.strings[f[7]::integer],
               p.strings[f[8]::integer],
               f[9]::boolean, f[10]::integer, f[11]::bigint,
               f[12]::bigint, f[13]::bigint,
               nullif(f[14], '')::double precision,
               f[15]::integer, nullif(f[16], '')::integer,
               f[17]::integer, f[18]::integer,
               p.strings[nullif(f[19], '')::integer],
               f[20]::bigint, f[21]::bigint, f[22]::bigint,
               f[23]::bigint, f[24]::boolean, f[25]::boolean
        FROM llmproxy_usage_packs p,
             string_to_table(p.records, E'\n') AS line,
             string_to_array(line, E'\t') AS f
        WHERE p.last_at >= $1 AND p.first_at < $2
    ) AS u (request_id, created_at, key_hash, key_alias, model, deployment,
            interface, endpoint, stream, status, prompt_tokens,
            completion_tokens, total_tokens, cost, latency_ms, ttfb_ms,
            attempts, fallbacks, error, cache_read_tokens,
            cache_creation_tokens, cache_creation_1h_tokens,
            reasoning_tokens, unpriced, usage_estimated)
    WHERE u.created_at >= $1 AND u.created_at < $2
$$;

-- The record of a request id.  The gateways' ids are UUIDs of version 7,
-- whose first 48 bits are the request's start in Unix milliseconds, its
-- record's created_at: only that minute's packs and rows are read.  Other
-- ids (of older gateways, version 4) are looked for everywhere.
CREATE FUNCTION llmproxy_usage_request(id uuid)
RETURNS SETOF llmproxy_usage_rows
LANGUAGE sql STABLE AS $$
    SELECT u.*
    FROM (SELECT replace($1::text, '-', '') AS h) x,
         LATERAL (SELECT CASE WHEN substr(x.h, 13, 1) = '7'
                      THEN to_timestamp(('x' || substr(x.h, 1, 12))::bit(48)
                                        ::bigint / 1000.0)
                      END AS at) t,
         LATERAL llmproxy_usage_between(
             coalesce(t.at - interval '1 minute', '-infinity'),
             coalesce(t.at + interval '1 minute', 'infinity')) u
    WHERE u.request_id = $1
$$;

CREATE VIEW llmproxy_usage AS
    SELECT * FROM llmproxy_usage_between('-infinity', 'infinity');

-- an INSERT leaves out these columns as it did on the table
ALTER VIEW llmproxy_usage ALTER COLUMN cache_read_tokens SET DEFAULT 0;
ALTER VIEW llmproxy_usage ALTER COLUMN cache_creation_tokens SET DEFAULT 0;
ALTER VIEW llmproxy_usage ALTER COLUMN cache_creation_1h_tokens SET DEFAULT 0;
ALTER VIEW llmproxy_usage ALTER COLUMN reasoning_tokens SET DEFAULT 0;
ALTER VIEW llmproxy_usage ALTER COLUMN unpriced SET DEFAULT false;
ALTER VIEW llmproxy_usage ALTER COLUMN usage_estimated SET DEFAULT false;

CREATE FUNCTION llmproxy_usage_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO llmproxy_usage_rows VALUES (NEW.*);
    RETURN NEW;
END $$;

-- COPY into the view takes the trigger, a row at a time
CREATE TRIGGER llmproxy_usage_insert INSTEAD OF INSERT ON llmproxy_usage
    FOR EACH ROW EXECUTE FUNCTION llmproxy_usage_insert();

-- an INSERT (which the rule rewrites before any trigger) is one statement
-- into the rows, however many: through the trigger the daily totals'
-- statement trigger ran once a row (100,000 rows: 115 s, not 0.5 s)
CREATE RULE llmproxy_usage_insert AS ON INSERT TO llmproxy_usage
    DO INSTEAD INSERT INTO llmproxy_usage_rows VALUES (NEW.*)
    RETURNING llmproxy_usage_rows.*;

-- Moves the rows created before `before` into packs, as the gateways
-- write them (16 a pack, in time order), and returns how many moved.  The
-- daily totals already count them.  For a table of imported or older
-- records: a pack takes about a third of the room.
CREATE FUNCTION llmproxy_usage_pack_rows(before timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    moved bigint;
BEGIN
    CREATE TEMP TABLE llmproxy_usage_packing ON COMMIT DROP AS
    WITH gone AS (
        DELETE FROM llmproxy_usage_rows WHERE created_at < before
        RETURNING *
    )
    SELECT g.*, (row_number() OVER (ORDER BY created_at) - 1) / 16 AS pack
    FROM gone g;

    INSERT INTO llmproxy_usage_packs (first_at, last_at, n, strings,
                                      records)
    SELECT min(r.created_at), max(r.created_at), count(*), s.strings,
           string_agg(concat_ws(E'\t',
               replace(r.request_id::text, '-', ''),
               (extract(epoch FROM r.created_at - t.first_at) * 1000000)
                   ::bigint,
               coalesce(array_position(s.strings, r.key_hash::text)::text,
                        ''),
               coalesce(array_position(s.strings, r.key_alias)::text, ''),
               array_position(s.strings, r.model),
               coalesce(array_position(s.strings, r.deployment)::text, ''),
               array_position(s.strings, r.interface),
               array_position(s.strings, r.endpoint),
               r.stream::integer, r.status, r.prompt_tokens,
               r.completion_tokens, r.total_tokens,
               coalesce(r.cost::text, ''), r.latency_ms,
               coalesce(r.ttfb_ms::text, ''), r.attempts, r.fallbacks,
               coalesce(array_position(s.strings, r.error)::text, ''),
               r.cache_read_tokens, r.cache_creation_tokens,
               r.cache_creation_1h_tokens, r.reasoning_tokens,
               r.unpriced::integer, r.usage_estimated::integer),
               E'\n' ORDER BY r.created_at)
    FROM llmproxy_usage_packing r
    JOIN (SELECT pack, min(created_at) AS first_at
          FROM llmproxy_usage_packing GROUP BY pack) t USING (pack)
    JOIN (SELECT pack, array_agg(DISTINCT x) AS strings
          FROM llmproxy_usage_packing,
               unnest(ARRAY[key_hash::text, key_alias, model, deployment,
                            interface, endpoint, error]) AS x
          WHERE x IS NOT NULL GROUP BY pack) s USING (pack)
    GROUP BY r.pack, s.strings;

    GET DIAGNOSTICS moved = ROW_COUNT;
    SELECT count(*) INTO moved FROM llmproxy_usage_packing;
    DROP TABLE llmproxy_usage_packing;
    RETURN moved;
END $$;
