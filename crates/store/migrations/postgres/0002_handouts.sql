-- Every GetAddrInfo answer: which remote went to which client host, with which addresses.
-- The selection reads it to rate-limit remotes and to avoid repeating an address to a client.
CREATE TABLE handouts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api_key_id      BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    client_peer_id  BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    remote_peer_id  BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    handed_at       BIGINT NOT NULL
);
CREATE INDEX idx_handouts_remote ON handouts (remote_peer_id, handed_at);

CREATE TABLE handout_addresses (
    handout_id          BIGINT NOT NULL REFERENCES handouts (id) ON DELETE CASCADE,
    multi_address_id    BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    PRIMARY KEY (handout_id, multi_address_id)
);
CREATE INDEX idx_handout_addresses_maddr ON handout_addresses (multi_address_id);
