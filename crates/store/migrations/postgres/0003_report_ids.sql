-- The client's id for a result: a result an API key delivers twice is stored once.
ALTER TABLE hole_punch_results ADD COLUMN report_id BYTEA;
CREATE UNIQUE INDEX idx_hole_punch_results_report_id ON hole_punch_results (api_key_id, report_id);
