-- NAT types of the peers a lab campaign runs (clients' hosts and remotes), so that reports can
-- split results by (client NAT, remote NAT) pair. Only the lab writes here; keyed by the base58
-- peer ID (as peers.peer_id) so a peer can be labelled before its first result arrives.
-- Keep in step with ../postgres/0004_lab_labels.sql.
CREATE TABLE lab_labels (
    peer_id     TEXT   PRIMARY KEY CHECK (length(peer_id) > 0),
    -- public, full-cone, port-restricted, symmetric, udp-blocked, double, ...
    nat_type    TEXT   NOT NULL CHECK (length(trim(nat_type)) > 0),
    -- Free text, e.g. the scenario or router name.
    note        TEXT,
    created_at  BIGINT NOT NULL
);
