-- Punchr schema, SQLite flavour. Keep in step with ../postgres/0001_schema.sql: both engines
-- must hold the same tables, columns and constraints. Times are Unix nanoseconds (BIGINT), the
-- unit of the wire protocol, so both engines compare and aggregate them the same way. Booleans
-- are INTEGER 0/1 here, because sqlx's Any driver cannot decode SQLite's BOOLEAN type; read
-- them with punchr_store::sql::flag.

-- Volunteers' API keys. Only a SHA-256 digest of the key is kept.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL CHECK (length(trim(name)) > 0),
    key_hash    BLOB   NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    anonymous   INTEGER NOT NULL DEFAULT FALSE,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

-- Every libp2p peer we know: honeypot, client hosts, remotes. peer_id is the base58 peer ID.
CREATE TABLE peers (
    id              INTEGER PRIMARY KEY,
    peer_id         TEXT    NOT NULL UNIQUE CHECK (length(peer_id) > 0),
    agent_version   TEXT,
    -- JSON array of protocol IDs, sorted.
    protocols       TEXT    NOT NULL DEFAULT '[]',
    supports_dcutr  INTEGER NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL CHECK (updated_at >= created_at)
);

-- Multiaddresses (text form) with the facts the selection and the reports need.
CREATE TABLE multi_addresses (
    id          INTEGER PRIMARY KEY,
    maddr       TEXT    NOT NULL UNIQUE CHECK (length(maddr) > 0),
    -- Contains /p2p-circuit.
    is_relay    INTEGER NOT NULL,
    -- The first IP component is globally routable (for relay addresses: the relay's IP).
    is_public   INTEGER NOT NULL,
    ip_address  TEXT,
    ip_version  INTEGER CHECK (ip_version IN (4, 6)),
    -- tcp, quic, quic-v1, webtransport, webrtc-direct, ws, wss, udp; NULL when none applies.
    transport   TEXT,
    created_at  BIGINT  NOT NULL
);

-- A NATed peer connected to the honeypot (one row per qualifying connection).
CREATE TABLE connection_events (
    id                      INTEGER PRIMARY KEY,
    local_peer_id           BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    remote_peer_id          BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    conn_multi_address_id   BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    opened_at               BIGINT NOT NULL,
    created_at              BIGINT NOT NULL
);
CREATE INDEX idx_connection_events_opened_at ON connection_events (opened_at);
CREATE INDEX idx_connection_events_remote ON connection_events (remote_peer_id, opened_at);

-- The addresses the remote advertised (identify listen addresses) at that connection.
CREATE TABLE connection_event_addresses (
    connection_event_id BIGINT NOT NULL REFERENCES connection_events (id) ON DELETE CASCADE,
    multi_address_id    BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    PRIMARY KEY (connection_event_id, multi_address_id)
);
CREATE INDEX idx_connection_event_addresses_maddr ON connection_event_addresses (multi_address_id);

-- A libp2p host of a client, bound to the API key that registered it.
CREATE TABLE client_hosts (
    id              INTEGER PRIMARY KEY,
    api_key_id      BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    peer_id         BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    registered_at   BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    UNIQUE (api_key_id, peer_id)
);
CREATE INDEX idx_client_hosts_peer ON client_hosts (peer_id);

-- A deduplicated set of listen addresses; digest = SHA-256 over the sorted member ids.
CREATE TABLE listen_address_sets (
    id      INTEGER PRIMARY KEY,
    digest  BLOB NOT NULL UNIQUE CHECK (length(digest) = 32)
);
CREATE TABLE listen_address_set_members (
    set_id              BIGINT NOT NULL REFERENCES listen_address_sets (id) ON DELETE CASCADE,
    multi_address_id    BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    PRIMARY KEY (set_id, multi_address_id)
);

CREATE TABLE hole_punch_results (
    id                      INTEGER PRIMARY KEY,
    api_key_id              BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    client_peer_id          BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    remote_peer_id          BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    listen_address_set_id   BIGINT REFERENCES listen_address_sets (id) ON DELETE SET NULL,
    connect_started_at      BIGINT  NOT NULL,
    connect_ended_at        BIGINT  NOT NULL,
    ended_at                BIGINT  NOT NULL,
    has_direct_conns        INTEGER NOT NULL,
    outcome                 TEXT    NOT NULL CHECK (outcome IN ('UNKNOWN', 'NO_CONNECTION', 'NO_STREAM',
                                'CONNECTION_REVERSED', 'CANCELLED', 'FAILED', 'SUCCESS')),
    error                   TEXT,
    -- JSON array of multiaddr protocol codes the client preferred ([] = no filter).
    protocol_filters        TEXT    NOT NULL DEFAULT '[]',
    created_at              BIGINT  NOT NULL
);
CREATE INDEX idx_hole_punch_results_created_at ON hole_punch_results (created_at);
CREATE INDEX idx_hole_punch_results_remote ON hole_punch_results (remote_peer_id, created_at);
CREATE INDEX idx_hole_punch_results_client ON hole_punch_results (client_peer_id, created_at);
CREATE INDEX idx_hole_punch_results_api_key ON hole_punch_results (api_key_id, created_at);

-- Served remote addresses (INITIAL) and remote addresses of connections open afterwards (FINAL).
CREATE TABLE hole_punch_result_addresses (
    result_id           BIGINT NOT NULL REFERENCES hole_punch_results (id) ON DELETE CASCADE,
    multi_address_id    BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    relationship        TEXT   NOT NULL CHECK (relationship IN ('INITIAL', 'FINAL')),
    PRIMARY KEY (result_id, multi_address_id, relationship)
);
CREATE INDEX idx_hole_punch_result_addresses_maddr ON hole_punch_result_addresses (multi_address_id, relationship);

-- One DCUtR stream opened by the remote; attempt_number counts from 1.
CREATE TABLE hole_punch_attempts (
    id                  INTEGER PRIMARY KEY,
    result_id           BIGINT NOT NULL REFERENCES hole_punch_results (id) ON DELETE CASCADE,
    attempt_number      INTEGER NOT NULL CHECK (attempt_number >= 1),
    opened_at           BIGINT  NOT NULL,
    started_at          BIGINT,
    ended_at            BIGINT  NOT NULL,
    start_rtt_seconds   REAL,
    elapsed_seconds     REAL NOT NULL,
    outcome             TEXT    NOT NULL CHECK (outcome IN ('UNKNOWN', 'DIRECT_DIAL', 'PROTOCOL_ERROR',
                            'CANCELLED', 'TIMEOUT', 'FAILED', 'SUCCESS')),
    error               TEXT,
    direct_dial_error   TEXT,
    UNIQUE (result_id, attempt_number)
);

-- Remote addresses used in an attempt.
CREATE TABLE hole_punch_attempt_addresses (
    attempt_id          BIGINT NOT NULL REFERENCES hole_punch_attempts (id) ON DELETE CASCADE,
    multi_address_id    BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    PRIMARY KEY (attempt_id, multi_address_id)
);

-- Pings around a hole punch. Statistics cover successful samples only (failed ones are in
-- rtts as -1 with their error in rtt_errs, as on the wire).
CREATE TABLE latency_measurements (
    id                  INTEGER PRIMARY KEY,
    result_id           BIGINT NOT NULL REFERENCES hole_punch_results (id) ON DELETE CASCADE,
    peer_id             BIGINT NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    multi_address_id    BIGINT NOT NULL REFERENCES multi_addresses (id) ON DELETE CASCADE,
    kind                TEXT   NOT NULL CHECK (kind IN ('TO_RELAY', 'TO_REMOTE_THROUGH_RELAY',
                            'TO_REMOTE_AFTER_HOLE_PUNCH')),
    -- JSON arrays, parallel.
    rtts                TEXT   NOT NULL,
    rtt_errs            TEXT   NOT NULL,
    samples_ok          INTEGER NOT NULL,
    samples_failed      INTEGER NOT NULL,
    rtt_avg             REAL,
    rtt_min             REAL,
    rtt_max             REAL,
    rtt_std             REAL,
    -- What the client reported about the pinged peer (never copied into peers).
    agent_version       TEXT,
    protocols           TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX idx_latency_measurements_result ON latency_measurements (result_id);

-- Port mappings (UPnP / NAT-PMP) the client held during the hole punch.
CREATE TABLE nat_mappings (
    id              INTEGER PRIMARY KEY,
    result_id       BIGINT  NOT NULL REFERENCES hole_punch_results (id) ON DELETE CASCADE,
    internal_port   INTEGER NOT NULL,
    external_port   INTEGER NOT NULL,
    protocol        TEXT    NOT NULL,
    addr            TEXT    NOT NULL,
    addr_network    TEXT    NOT NULL
);
CREATE INDEX idx_nat_mappings_result ON nat_mappings (result_id);

-- What the client learned about its own network.
CREATE TABLE network_information (
    id                      INTEGER PRIMARY KEY,
    result_id               BIGINT NOT NULL UNIQUE REFERENCES hole_punch_results (id) ON DELETE CASCADE,
    supports_ipv6           INTEGER,
    supports_ipv6_error     TEXT,
    router_login_html       TEXT,
    router_login_html_error TEXT
);
