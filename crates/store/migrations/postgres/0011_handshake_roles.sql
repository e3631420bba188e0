-- How a client's hole-punch dials chose their side of the direct connection's handshakes
-- (role_strategy: SPEC or ADAPTIVE) and which side each attempt's dial took (handshake_role:
-- CLIENT or SERVER). NULL where the client does not say (the original clients). Keep in step
-- with ../sqlite/0011_handshake_roles.sql.
ALTER TABLE hole_punch_results ADD COLUMN role_strategy TEXT;
ALTER TABLE hole_punch_attempts ADD COLUMN handshake_role TEXT;
