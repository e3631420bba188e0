-- Tables of the reports (crates/report). Keep in step with ../sqlite/0004_report.sql: both
-- engines hold the same tables and columns.

-- NAT types of the peers a lab campaign runs (clients' hosts and remotes), so that reports can
-- split results by (client NAT, remote NAT) pair. Only the lab writes here; keyed by the base58
-- peer ID (as peers.peer_id) so that a peer can be labelled before its first result arrives.
CREATE TABLE lab_labels (
    peer_id     TEXT   PRIMARY KEY CHECK (length(peer_id) > 0),
    -- public, full-cone, port-restricted, symmetric, udp-blocked, double, ...
    nat_type    TEXT   NOT NULL CHECK (length(trim(nat_type)) > 0),
    -- Free text, e.g. the scenario or router name.
    note        TEXT,
    created_at  BIGINT NOT NULL
);

-- One narrow row per hole punch result with what the reports aggregate, derived from the result,
-- its attempts and its addresses. Results never change once stored, so punchr-report fills this
-- table incrementally, set-based, for the results it has not seen yet; reports over millions of
-- results then scan this table instead of joining attempts and addresses every time.
CREATE TABLE report_facts (
    result_id           BIGINT  PRIMARY KEY REFERENCES hole_punch_results (id) ON DELETE CASCADE,
    created_at          BIGINT  NOT NULL,
    api_key_id          BIGINT  NOT NULL,
    client_peer_id      BIGINT  NOT NULL,
    remote_peer_id      BIGINT  NOT NULL,
    outcome             TEXT    NOT NULL,
    -- Transports of the direct connections a SUCCESS produced (non-relay FINAL addresses), or of
    -- what any other outcome tried (non-relay attempt addresses), as bits: 1 TCP, 2 QUIC,
    -- 4 WebTransport, 8 WebRTC, 16 WebSocket, 32 other; 0 = none known.
    transports          INTEGER NOT NULL,
    -- IP versions of the same addresses: 1 IPv4, 2 IPv6, 4 other; 0 = none known.
    ip_versions         INTEGER NOT NULL,
    -- Number of attempts (DCUtR streams).
    attempts            INTEGER NOT NULL,
    -- For a SUCCESS: the number of its first SUCCESS or DIRECT_DIAL attempt.
    successful_attempt  INTEGER,
    -- For a SUCCESS: nanoseconds from connect_ended_at to the end of that attempt.
    time_to_direct_ns   BIGINT
);
CREATE INDEX idx_report_facts_created_at ON report_facts (created_at);
