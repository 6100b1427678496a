-- llmproxy schema, version 11: which salt key encrypted a provider's
-- secrets.
--
-- salt_key_id is llmp_salt_key_id() of the LLMPROXY_SALT_KEY that
-- encrypted api_key_enc and headers_enc (16 hex digits of SHA-256 over a
-- label and the key; it tells nothing about the key).  `llmproxyctl sync`
-- stores again, encrypted with its own salt key, every entry whose id
-- differs, so rotating the salt key needs no manual step.  NULL: written
-- before this column; sync then checks whether its salt key decrypts the
-- entry.  A column rather than a member of data: gateways validate a
-- provider's members, and one of an earlier version would refuse a
-- config whose providers had a member it does not know.

ALTER TABLE llmproxy_config_entries ADD COLUMN salt_key_id text;
