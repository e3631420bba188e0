//! The store's integration tests, one binary: every storage test on a SQLite file and on a
//! PostgreSQL database (`punchr_testutil::on_both_engines!`), one module per area.

mod engines;
mod facts;
mod storage;
