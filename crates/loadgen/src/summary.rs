//! The figures of a soak run: the table printed every interval and the summary at the end.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::stats::{Rpc, RpcTally, Tally};

const MIB: f64 = 1024.0 * 1024.0;

/// One line of the table: the calls of one interval and the server's state at its end.
#[derive(Debug, Clone)]
pub struct Row {
    /// Time since the clients started, at the end of the interval.
    pub elapsed: Duration,
    /// Whether the interval lies (partly) in the warm-up.
    pub warmup: bool,
    /// The interval's length.
    pub length: Duration,
    /// The calls made in it.
    pub calls: Tally,
    /// Server RSS at its end, bytes.
    pub rss_bytes: u64,
    /// Server CPU time used in it.
    pub cpu: Duration,
}

impl Row {
    /// The table's header, aligned with [`Row`]'s `Display`.
    pub const HEADER: &'static str = "elapsed  phase     req/s  GetAddrInfo p99  TrackHolePunch p99  all p99   max      errors  RSS MiB  server CPU";

    fn rate(&self) -> f64 {
        self.calls.calls() as f64 / self.length.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.calls.all();
        write!(
            f,
            "{:>6}s  {:<7} {:>7.1}  {:>15}  {:>18}  {:>8}  {:>8} {:>6}  {:>7.1}  {:>9.0} %",
            self.elapsed.as_secs(),
            if self.warmup { "warm-up" } else { "measure" },
            self.rate(),
            millis(self.calls.rpc(Rpc::GetAddrInfo), 0.99),
            millis(self.calls.rpc(Rpc::TrackHolePunch), 0.99),
            millis(&all, 0.99),
            format_ms(all.max_latency()),
            self.calls.failed(),
            self.rss_bytes as f64 / MIB,
            100.0 * self.cpu.as_secs_f64() / self.length.as_secs_f64().max(1e-9),
        )
    }
}

fn millis(tally: &RpcTally, quantile: f64) -> String {
    if tally.calls() == 0 {
        return "–".into();
    }
    format_ms(tally.latency(quantile))
}

fn format_ms(latency: Duration) -> String {
    format!("{:.1} ms", latency.as_secs_f64() * 1000.0)
}

/// The server's resident memory over the run.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// RSS at the end of the warm-up, bytes: the baseline.
    pub baseline_bytes: u64,
    /// Highest RSS after the warm-up, bytes.
    pub peak_bytes: u64,
    /// RSS when the clients stopped, bytes.
    pub end_bytes: u64,
    /// Every sample: time since the clients started, RSS bytes.
    pub samples: Vec<(Duration, u64)>,
}

impl Memory {
    /// Peak over baseline.
    pub fn peak_ratio(&self) -> f64 {
        self.peak_bytes as f64 / self.baseline_bytes.max(1) as f64
    }

    /// End over baseline.
    pub fn end_ratio(&self) -> f64 {
        self.end_bytes as f64 / self.baseline_bytes.max(1) as f64
    }

    /// Lowest and highest RSS from `since` on, bytes: how flat memory stayed late in the run.
    pub fn range_since(&self, since: Duration) -> (u64, u64) {
        let late = self.samples.iter().filter(|(at, _)| *at >= since);
        let (min, max) = late.fold((u64::MAX, 0), |(min, max), (_, rss)| {
            (min.min(*rss), max.max(*rss))
        });
        (min.min(max), max)
    }
}

/// Everything a soak run measured.
#[derive(Debug, Clone)]
pub struct SoakSummary {
    /// Simulated clients.
    pub clients: usize,
    /// Host identities over all clients.
    pub hosts: usize,
    /// Remote peers in the database.
    pub remotes: usize,
    /// Time from the first client's start to the stop signal.
    pub duration: Duration,
    /// The warm-up at its start.
    pub warmup: Duration,
    /// Calls after the warm-up.
    pub measured: Tally,
    /// Calls over the whole run.
    pub run: Tally,
    /// The table, one row per interval.
    pub rows: Vec<Row>,
    /// The server's memory.
    pub memory: Memory,
    /// Server CPU time after the warm-up.
    pub measured_cpu: Duration,
    /// Results the server accepted, by outcome.
    pub results_sent: BTreeMap<String, u64>,
    /// Results in the database at the end, by outcome.
    pub results_stored: BTreeMap<String, u64>,
    /// Connection events the simulated honeypot wrote during the run.
    pub honeypot_events: u64,
}

impl SoakSummary {
    /// What went wrong in the run, one line each (empty when nothing did): failed calls,
    /// nothing sent, or results the server accepted that the database does not hold. The soak
    /// test asserts this is empty and the soak bench exits non-zero when it is not.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.errors() > 0 {
            failures.push(format!("calls failed: {:?}", self.run.all().errors));
        }
        if self.sent_total() == 0 {
            failures.push("no result was sent".to_owned());
        }
        if self.results_sent != self.results_stored {
            failures.push(format!(
                "results sent and stored differ (sent/stored by outcome): {}",
                outcome_pairs(&self.results_sent, &self.results_stored)
            ));
        }
        failures
    }

    /// Failed calls over the whole run, warm-up included.
    pub fn errors(&self) -> u64 {
        self.run.failed()
    }

    /// Results the server accepted.
    pub fn sent_total(&self) -> u64 {
        self.results_sent.values().sum()
    }

    /// Results in the database.
    pub fn stored_total(&self) -> u64 {
        self.results_stored.values().sum()
    }

    fn measured_secs(&self) -> f64 {
        self.duration
            .saturating_sub(self.warmup)
            .as_secs_f64()
            .max(1e-9)
    }
}

impl fmt::Display for SoakSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.measured_secs();
        writeln!(
            f,
            "soak: {} clients ({} hosts), {} remotes, {:.0} s ({:.0} s warm-up, {:.0} s measured)",
            self.clients,
            self.hosts,
            self.remotes,
            self.duration.as_secs_f64(),
            self.warmup.as_secs_f64(),
            secs
        )?;
        writeln!(
            f,
            "{:<15} {:>8} {:>8} {:>9} {:>9} {:>9}  {:>9}  errors (whole run)",
            "rpc (measured)", "calls", "req/s", "p50", "p99", "max", "run calls"
        )?;
        let mut rows: Vec<(&str, RpcTally, &RpcTally)> = Rpc::ALL
            .iter()
            .map(|rpc| {
                (
                    rpc.name(),
                    self.measured.rpc(*rpc).clone(),
                    self.run.rpc(*rpc),
                )
            })
            .collect();
        let (measured_all, run_all) = (self.measured.all(), self.run.all());
        rows.push(("all", measured_all, &run_all));
        for (name, measured, run) in &rows {
            let errors = if run.errors.is_empty() {
                "0".to_owned()
            } else {
                run.errors
                    .iter()
                    .map(|(code, count)| format!("{code}: {count}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(
                f,
                "{:<15} {:>8} {:>8.1} {:>9} {:>9} {:>9}  {:>9}  {errors}",
                name,
                measured.calls(),
                measured.calls() as f64 / secs,
                millis(measured, 0.5),
                millis(measured, 0.99),
                format_ms(measured.max_latency()),
                run.calls(),
            )?;
        }
        let memory = &self.memory;
        writeln!(
            f,
            "server RSS: baseline {:.1} MiB (end of warm-up), peak {:.1} MiB ({:.2}×), end {:.1} MiB ({:.2}×)",
            memory.baseline_bytes as f64 / MIB,
            memory.peak_bytes as f64 / MIB,
            memory.peak_ratio(),
            memory.end_bytes as f64 / MIB,
            memory.end_ratio()
        )?;
        let second_half = self.warmup + self.duration.saturating_sub(self.warmup) / 2;
        let (low, high) = memory.range_since(second_half);
        writeln!(
            f,
            "server RSS in the second half of the measured phase (from {} s): {:.1}–{:.1} MiB",
            second_half.as_secs(),
            low as f64 / MIB,
            high as f64 / MIB
        )?;
        writeln!(
            f,
            "server CPU after warm-up: {:.1} s in {secs:.0} s ({:.0} % of one core)",
            self.measured_cpu.as_secs_f64(),
            100.0 * self.measured_cpu.as_secs_f64() / secs
        )?;
        writeln!(
            f,
            "results sent {} / stored {}; by outcome (sent/stored): {}",
            self.sent_total(),
            self.stored_total(),
            outcome_pairs(&self.results_sent, &self.results_stored)
        )?;
        write!(
            f,
            "honeypot connection events during the run: {}",
            self.honeypot_events
        )
    }
}

fn outcome_pairs(sent: &BTreeMap<String, u64>, stored: &BTreeMap<String, u64>) -> String {
    let mut names: Vec<&String> = sent.keys().chain(stored.keys()).collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|name| {
            format!(
                "{name} {}/{}",
                sent.get(*name).copied().unwrap_or(0),
                stored.get(*name).copied().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_memory_range_covers_only_late_samples() {
        let memory = Memory {
            samples: vec![
                (Duration::from_secs(10), 50),
                (Duration::from_secs(20), 80),
                (Duration::from_secs(30), 70),
            ],
            ..Memory::default()
        };
        assert_eq!(memory.range_since(Duration::from_secs(20)), (70, 80));
        assert_eq!(memory.range_since(Duration::from_secs(40)), (0, 0));
    }
}
