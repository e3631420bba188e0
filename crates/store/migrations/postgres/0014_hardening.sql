-- Hardening against strangers (issue 15). Keep in step with ../sqlite/0013_hardening.sql.

-- One definition of a public address (punchr-address, go-multiaddr's ranges): the benchmarking
-- range 198.18.0.0/15 and 192.88.99.0/24 are not public. Rows stored under the older rule are
-- corrected, so that selection's prefilter on is_public agrees with its check in code.
UPDATE multi_addresses SET is_public = FALSE
WHERE ip_address LIKE '198.18.%' OR ip_address LIKE '198.19.%' OR ip_address LIKE '192.88.99.%';

-- The per-key handout quota and the per-key exclusion of served remotes read a key's handouts.
CREATE INDEX idx_handouts_key ON handouts (api_key_id, handed_at);

-- Whether the honeypot recorded the peer (as a remote or as itself). Register never rewrites
-- such a peer's agent version and protocols: a key could otherwise take a remote out of
-- selection or put any text into the reports by agent.
ALTER TABLE peers ADD COLUMN seen_by_honeypot BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE peers SET seen_by_honeypot = TRUE
WHERE id IN (SELECT remote_peer_id FROM connection_events)
   OR id IN (SELECT local_peer_id FROM connection_events);
