-- llmproxy schema, version 2: the config itself, stored by `llmproxyctl
-- sync` and loaded by every gateway sharing the database.
--
-- One row per entry of the compiled config: kind 'credentials' (a provider;
-- its api_key encrypted with LLMPROXY_SALT_KEY in api_key_enc), 'models'
-- (a deployment), 'aliases', 'fallbacks', 'settings' (name 'settings').
-- data holds the entry as in the compiled config (never a plain api_key).

CREATE TABLE llmproxy_config_entries (
    kind        text NOT NULL CHECK (kind IN ('credentials', 'models',
                    'aliases', 'fallbacks', 'settings')),
    name        text NOT NULL,
    data        jsonb NOT NULL,
    api_key_enc text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name)
);

-- the version gateways poll: bumped by every statement that changes an
-- entry (deletes included)
CREATE TABLE llmproxy_config_state (
    id            integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    version       bigint NOT NULL DEFAULT 0,
    config_sha256 text NOT NULL DEFAULT '',   -- set by llmproxyctl sync
    updated_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO llmproxy_config_state (id, version) VALUES (1, 0);

CREATE FUNCTION llmproxy_config_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE llmproxy_config_state
       SET version = nextval('llmproxy_change_seq'), updated_at = now()
     WHERE id = 1;
    PERFORM pg_notify('llmproxy_changes', 'config');
    RETURN NULL;
END $$;

CREATE TRIGGER llmproxy_config_entries_bump
    AFTER INSERT OR UPDATE OR DELETE ON llmproxy_config_entries
    FOR EACH STATEMENT EXECUTE FUNCTION llmproxy_config_bump();
