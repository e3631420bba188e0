-- The libp2p implementation a lab remote runs (rust, go-v0.40, go-v0.47, go-v0.52, kubo, js), so
-- that lab reports split every cell by it. NULL for client hosts and in field campaigns. Keep in
-- step with ../sqlite/0012_lab_implementations.sql.
ALTER TABLE lab_labels ADD COLUMN implementation TEXT;
