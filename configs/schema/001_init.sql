-- llmproxy schema, version 1: virtual keys and the stored config.
-- Applied by `llmproxyctl` (migrations run in order, each once, inside a
-- transaction; llmproxy_schema_migrations records what was applied).

-- Every change to a key or to the stored config takes the next number of
-- this sequence, so a gateway asks only for what changed since the last
-- number it saw.
CREATE SEQUENCE IF NOT EXISTS llmproxy_change_seq;

CREATE TABLE llmproxy_keys (
    key_hash                char(64) PRIMARY KEY,   -- hex SHA-256 of the key
    key_prefix              text NOT NULL,          -- "sk-AbCd" for listings
    alias                   text UNIQUE,
    models                  text[] NOT NULL DEFAULT '{}',
    access_groups           text[] NOT NULL DEFAULT '{}',
    max_budget              double precision,       -- USD, NULL: none
    budget_duration_seconds bigint,                 -- NULL: never resets
    budget_reset_at         timestamptz,
    spend                   double precision NOT NULL DEFAULT 0,
    rpm                     integer,                -- NULL: unlimited
    tpm                     integer,
    expires_at              timestamptz,
    blocked                 boolean NOT NULL DEFAULT false,
    revoked_at              timestamptz,            -- revoked keys stay
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    change_seq              bigint NOT NULL DEFAULT nextval('llmproxy_change_seq')
);

CREATE INDEX llmproxy_keys_change_seq ON llmproxy_keys (change_seq);

CREATE FUNCTION llmproxy_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.change_seq := nextval('llmproxy_change_seq');
    PERFORM pg_notify('llmproxy_changes', TG_TABLE_NAME);
    RETURN NEW;
END $$;

CREATE TRIGGER llmproxy_keys_touch BEFORE INSERT OR UPDATE ON llmproxy_keys
    FOR EACH ROW EXECUTE FUNCTION llmproxy_touch();
