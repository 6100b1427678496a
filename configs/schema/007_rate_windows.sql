-- llmproxy schema, version 7: key rpm/tpm across gateway replicas.
--
-- Every gateway's poller writes, each poll, how many requests and tokens
-- it let through this minute for each key with rpm or tpm, and reads the
-- sums of the other gateways (node: a name a gateway picks when its shared
-- memory zone is created).  The counts are worth nothing after their
-- minute, so the table is UNLOGGED (no WAL, emptied by a crash) and the
-- pollers delete minutes older than a few.

CREATE UNLOGGED TABLE llmproxy_rate_windows (
    node            text NOT NULL,
    key_hash        text NOT NULL,
    window_start    timestamptz NOT NULL,
    requests        bigint NOT NULL DEFAULT 0,
    tokens          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (window_start, key_hash, node)
);
