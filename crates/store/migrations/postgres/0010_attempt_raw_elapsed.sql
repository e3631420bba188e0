-- The elapsed time of an attempt as the client sent it, where the server normalised it
-- (punchr-server's validation: the original Rust client sends microseconds labelled as seconds).
-- NULL when elapsed_seconds is the value sent. Keep in step with
-- ../sqlite/0010_attempt_raw_elapsed.sql.
ALTER TABLE hole_punch_attempts ADD COLUMN elapsed_time_raw DOUBLE PRECISION;
