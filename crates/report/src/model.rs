//! The report: what the text, JSON, HTML and dashboard outputs all show.

use std::collections::BTreeMap;

use punchr_store::Outcome;
use serde::{Deserialize, Serialize};

use crate::stats::Rate;

/// Number of results per overall outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct OutcomeCounts {
    /// Not classified.
    pub unknown: u64,
    /// The relayed connection failed.
    pub no_connection: u64,
    /// The remote opened no DCUtR stream.
    pub no_stream: u64,
    /// A direct connection appeared without a hole punch.
    pub connection_reversed: u64,
    /// Stopped by the user.
    pub cancelled: u64,
    /// The hole punch failed.
    pub failed: u64,
    /// The hole punch produced a direct connection.
    pub success: u64,
}

impl OutcomeCounts {
    /// Adds `count` results with `outcome`.
    pub fn add(&mut self, outcome: Outcome, count: u64) {
        *self.slot(outcome) += count;
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &OutcomeCounts) {
        for &outcome in Outcome::ALL {
            self.add(outcome, other.get(outcome));
        }
    }

    /// Results with `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        let mut copy = *self;
        *copy.slot(outcome)
    }

    fn slot(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::Unknown => &mut self.unknown,
            Outcome::NoConnection => &mut self.no_connection,
            Outcome::NoStream => &mut self.no_stream,
            Outcome::ConnectionReversed => &mut self.connection_reversed,
            Outcome::Cancelled => &mut self.cancelled,
            Outcome::Failed => &mut self.failed,
            Outcome::Success => &mut self.success,
        }
    }

    /// All results.
    pub fn total(&self) -> u64 {
        Outcome::ALL.iter().map(|&o| self.get(o)).sum()
    }

    /// SUCCESS / (SUCCESS + FAILED): the success rate as the original published it.
    pub fn published_rate(&self) -> Rate {
        Rate::new(self.success, self.success + self.failed)
    }

    /// SUCCESS / all results: the end-to-end rate.
    pub fn end_to_end_rate(&self) -> Rate {
        Rate::new(self.success, self.total())
    }
}

/// One group of a split (a transport, an agent, a client …) with both rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// What the group is (e.g. `TCP`).
    pub key: String,
    /// Results in the group, by outcome.
    pub outcomes: OutcomeCounts,
    /// SUCCESS / (SUCCESS + FAILED) within the group.
    pub published: Rate,
    /// SUCCESS / all results within the group.
    pub end_to_end: Rate,
}

impl GroupRow {
    /// A row with rates computed from `outcomes`.
    pub fn new(key: impl Into<String>, outcomes: OutcomeCounts) -> GroupRow {
        GroupRow {
            key: key.into(),
            published: outcomes.published_rate(),
            end_to_end: outcomes.end_to_end_rate(),
            outcomes,
        }
    }
}

/// One agent family group (see `punchr_store::agent`): its outcomes and rates, and how its
/// successes came about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRow {
    /// The counts and rates; `key` is the family with its `major.minor` version, and for
    /// go-libp2p its DCUtR role era (`go-libp2p 0.40 (legacy DCUtR roles)`).
    #[serde(flatten)]
    pub row: GroupRow,
    /// SUCCESS results by the number of the attempt that succeeded (`1`, `2`, `3`; `none`
    /// when no attempt is marked successful).
    pub successes_by_attempt: BTreeMap<String, u64>,
    /// SUCCESS results by transport of the direct connection (`TCP`, `QUIC` …; `none` when
    /// unknown); a success with a TCP and a QUIC connection counts for both.
    pub successes_by_transport: BTreeMap<String, u64>,
}

/// A (client NAT type, remote NAT type) pair, from the lab's labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatPairRow {
    /// The client host's NAT type (`?` when only the remote is labelled).
    pub client_nat: String,
    /// The remote's NAT type (`?` when only the client is labelled).
    pub remote_nat: String,
    /// The counts and rates; `key` is `client → remote`.
    #[serde(flatten)]
    pub row: GroupRow,
}

/// On which attempt hole punches succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSplit {
    /// One row per attempt number, ascending.
    pub rows: Vec<AttemptRow>,
    /// SUCCESS results none of whose attempts is SUCCESS or DIRECT_DIAL.
    pub successes_without_successful_attempt: u64,
}

/// Attempts with one attempt number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRow {
    /// 1 for the first DCUtR stream of a hole punch.
    pub attempt_number: i64,
    /// Attempts made with this number (any result outcome).
    pub attempts: u64,
    /// Of these, attempts that succeeded (SUCCESS or DIRECT_DIAL) in a SUCCESS result.
    pub successful: u64,
    /// Share of all SUCCESS results that succeeded on this attempt.
    pub share_of_successes: Rate,
    /// successful / attempts.
    pub attempt_success_rate: Rate,
}

/// How long it took from the relayed connection to the direct one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeToDirect {
    /// SUCCESS results with a successful attempt.
    pub count: u64,
    /// Median, seconds (nearest rank).
    pub p50_seconds: Option<f64>,
    /// 90th percentile, seconds (nearest rank).
    pub p90_seconds: Option<f64>,
    /// Distribution over fixed bins.
    pub histogram: Vec<HistogramBin>,
}

/// A bin of the time-to-direct distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    /// E.g. `0.5–1 s`.
    pub label: String,
    /// Lower bound, seconds (inclusive).
    pub from_seconds: f64,
    /// Upper bound, seconds (exclusive); absent for the last bin.
    pub to_seconds: Option<f64>,
    /// Results in the bin.
    pub count: u64,
}

/// A normalised error text and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReason {
    /// The outcome the error came with (result or attempt outcome).
    pub outcome: String,
    /// The error text with addresses, peer IDs and numbers replaced by placeholders.
    pub reason: String,
    /// Occurrences.
    pub count: u64,
}

/// Outcomes of the results stored within one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeBucket {
    /// Start of the bucket, Unix seconds.
    pub start: i64,
    /// Results by outcome.
    pub outcomes: OutcomeCounts,
    /// SUCCESS / (SUCCESS + FAILED).
    pub published: Rate,
    /// SUCCESS / all.
    pub end_to_end: Rate,
}

/// Outcomes per transport within one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportBucket {
    /// Start of the bucket, Unix seconds.
    pub start: i64,
    /// `TCP`, `QUIC`, …
    pub transport: String,
    /// Results by outcome.
    pub outcomes: OutcomeCounts,
    /// SUCCESS / (SUCCESS + FAILED).
    pub published: Rate,
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportScope {
    /// `--since`, RFC 3339.
    pub since: Option<String>,
    /// `--until`, RFC 3339.
    pub until: Option<String>,
    /// Only this API key name.
    pub api_key_name: Option<String>,
    /// Time of the first result in scope, RFC 3339.
    pub first_result: Option<String>,
    /// Time of the last result in scope, RFC 3339.
    pub last_result: Option<String>,
    /// `sqlite` or `postgres`.
    pub engine: String,
}

/// Everything a report says. Splits overlap where one result belongs to several groups (a
/// result that tried TCP and QUIC counts for both); see each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the report was made, RFC 3339.
    pub generated_at: String,
    /// Which results it covers.
    pub scope: ReportScope,
    /// Results by outcome.
    pub outcomes: OutcomeCounts,
    /// SUCCESS / (SUCCESS + FAILED): the success rate as the original published it.
    pub published_rate: Rate,
    /// SUCCESS / all results.
    pub end_to_end_rate: Rate,
    /// By transport of the direct connection: a SUCCESS counts for the transports of the
    /// direct connections it produced (FINAL addresses), any other outcome for the transports it
    /// tried (attempt addresses). Results with neither are under `none`.
    pub by_transport: Vec<GroupRow>,
    /// By IP version, attributed like `by_transport`.
    pub by_ip_version: Vec<GroupRow>,
    /// Attempt numbers.
    pub by_attempt: AttemptSplit,
    /// By the remote's agent version (commit suffixes removed; the largest groups, then
    /// `(other)`).
    pub by_remote_agent: Vec<GroupRow>,
    /// By API key name (anonymous keys as `anonymous #id`).
    pub by_client: Vec<GroupRow>,
    /// By the family of the client host's agent (ours, the original Rust or Go client).
    #[serde(default)]
    pub by_client_family: Vec<FamilyRow>,
    /// By the family of the remote's agent, as the honeypot stored it (the largest groups,
    /// then `(other)`).
    #[serde(default)]
    pub by_remote_family: Vec<FamilyRow>,
    /// By NAT type pair, where the lab labelled the peers.
    pub by_nat_pair: Vec<NatPairRow>,
    /// From the end of the relayed connection to the end of the successful attempt.
    pub time_to_direct: TimeToDirect,
    /// Error texts of results that did not succeed, grouped.
    pub failure_reasons: Vec<FailureReason>,
    /// Error texts of attempts that did not succeed, grouped.
    pub attempt_failure_reasons: Vec<FailureReason>,
    /// Width of the time buckets, seconds.
    pub bucket_seconds: i64,
    /// Outcomes per time bucket (buckets without results are left out).
    pub over_time: Vec<TimeBucket>,
    /// Outcomes per time bucket and transport, attributed like `by_transport`.
    pub transport_over_time: Vec<TransportBucket>,
}
