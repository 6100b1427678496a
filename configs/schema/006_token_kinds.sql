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

ALTER TABLE llmproxy_usage
    ALTER COLUMN cost DROP NOT NULL,
    ADD COLUMN cache_read_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cache_creation_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN cache_creation_1h_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN reasoning_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN unpriced boolean NOT NULL DEFAULT false;
