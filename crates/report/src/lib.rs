//! What a Punchr campaign measured: success rates, their splits, timings and failure reasons.
//!
//! This crate turns the hole punch results in a Punchr database (either engine, through
//! [`punchr_store::Store`]) into answers, and serves them four ways:
//!
//! - the `report` command of `punchr-server` ([`cli::ReportArgs`], [`cli::run`]): a text table,
//!   JSON, or a self-contained HTML page with inline SVG charts;
//! - a live web dashboard ([`dashboard::router`]) that the server serves on its own port: a
//!   health view, a performance view and a personal page per API key;
//! - Grafana dashboards over Prometheus and PostgreSQL, shipped as JSON in `grafana/`, with a
//!   Prometheus scrape configuration in `prometheus/`;
//! - the library itself, for the lab and for tests: [`build_report`] returns a [`Report`].
//!
//! All of them read the same [`Report`], so they cannot disagree. Every aggregation runs in SQL
//! (`GROUP BY`), so a report over millions of results moves only a few hundred rows out of the
//! database.
//!
//! Two success rates appear everywhere, always labelled: the rate **as the original published
//! it**, SUCCESS / (SUCCESS + FAILED) (`punchr-original.md` §15), which leaves out punches where
//! no hole punch was tried, and the **end-to-end** rate, SUCCESS over all outcomes. Both carry
//! Wilson score 95 % intervals ([`stats`]).
//!
//! NAT types are known only in the lab: it names them per peer in the `lab_labels` table
//! ([`Store::label_lab_peer`](punchr_store::Store::label_lab_peer)), and the report splits by the (client, remote) NAT type pair.

pub mod cli;
mod collect;
pub mod dashboard;
mod failure_text;
mod filter;
mod model;
pub mod nat_labels;
pub mod render;
pub mod stats;

pub use collect::{build_report, refresh_facts};
pub use filter::{parse_bucket, parse_time_bound, ReportFilter, MAX_BUCKETS, MAX_BUCKET_SECONDS};
pub use model::{
    AttemptRow, AttemptSplit, FailureReason, FamilyRow, GroupRow, HistogramBin, NatPairRow,
    OutcomeCounts, Report, ReportScope, TimeBucket, TimeToDirect, TransportBucket,
};
pub use stats::Rate;

use punchr_store::StoreError;

/// What can go wrong while building or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query failed.
    #[error("report query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A time given on the command line could not be read.
    #[error("invalid time {input:?}: {reason}")]
    InvalidTime {
        /// What was given.
        input: String,
        /// What to write instead.
        reason: String,
    },
    /// The time range is empty.
    #[error("--since ({since}) is not before --until ({until})")]
    EmptyRange {
        /// Start, as given.
        since: String,
        /// End, as given.
        until: String,
    },
    /// A bucket width is not acceptable.
    #[error("invalid bucket {input:?}: {reason}")]
    InvalidBucket {
        /// What was given.
        input: String,
        /// What to write instead.
        reason: String,
    },
    /// The bucket is too narrow for the results in scope.
    #[error("{bucket_seconds} s buckets would split the results into {buckets} buckets, more than the {max} a report holds; choose a wider bucket or a shorter time range")]
    TooManyBuckets {
        /// The width asked for.
        bucket_seconds: i64,
        /// How many buckets it would make.
        buckets: i64,
        /// [`MAX_BUCKETS`].
        max: i64,
    },
    /// No API key has the given name.
    #[error("no API key named {0:?}; `punchr-server keys list` shows the names")]
    UnknownKeyName(String),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
