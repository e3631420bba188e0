-- The failure reason of each result and attempt: its error text normalised (addresses, peer IDs
-- and numbers replaced by placeholders, control characters removed) and cut to 160 characters
-- (punchr_store::reason). Written at insert, so that reports group a few short reasons in SQL
-- instead of reading every distinct error text. NULL for rows stored before this migration;
-- reports fall back to the first 160 characters of their error text. Numbered 0020 so that
-- migrations added meanwhile on other branches keep their numbers. Keep in step with
-- ../sqlite/0020_failure_reasons.sql.
ALTER TABLE hole_punch_results ADD COLUMN reason TEXT;
ALTER TABLE hole_punch_attempts ADD COLUMN reason TEXT;
