-- llmproxy schema, version 4: provider headers encrypted at rest.
--
-- A provider's headers (often an Authorization) are secrets like its
-- api_key: `llmproxyctl sync` stores them encrypted with LLMPROXY_SALT_KEY
-- (AES-256-GCM, the object as JSON) in headers_enc, and in data only
-- "headers_sha256", the digest sync compares.  Rows an older llmproxyctl
-- wrote with plain "headers" in data still load; the next sync encrypts
-- them.

ALTER TABLE llmproxy_config_entries ADD COLUMN headers_enc text;
