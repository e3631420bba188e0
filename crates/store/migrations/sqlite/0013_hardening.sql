-- Hardening against strangers (issue 15). Keep in step with ../postgres/0013_hardening.sql.

-- One definition of a public address (punchr-address, go-multiaddr's ranges): the benchmarking
-- range 198.18.0.0/15 and 192.88.99.0/24 are not public. Rows stored under the older rule are
-- corrected, so that selection's prefilter on is_public agrees with its check in code.
UPDATE multi_addresses SET is_public = FALSE
WHERE ip_address LIKE '198.18.%' OR ip_address LIKE '198.19.%' OR ip_address LIKE '192.88.99.%';

-- The per-key handout quota and the per-key exclusion of served remotes read a key's handouts.
CREATE INDEX idx_handouts_key ON handouts (api_key_id, handed_at);
