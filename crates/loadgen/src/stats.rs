//! What the simulated clients measure: per RPC, a latency histogram and the failed calls by gRPC
//! code, kept for three spans at once (the current table interval, the measured phase after the
//! warm-up, the whole run).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The three RPCs of `PunchrService`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rpc {
    /// Register: once per host.
    Register,
    /// GetAddrInfo: once per hole punch.
    GetAddrInfo,
    /// TrackHolePunch: once per hole punch.
    TrackHolePunch,
}

impl Rpc {
    /// Every RPC, in table order.
    pub const ALL: [Rpc; 3] = [Rpc::Register, Rpc::GetAddrInfo, Rpc::TrackHolePunch];

    /// The method name, as the server's metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::Register => "Register",
            Rpc::GetAddrInfo => "GetAddrInfo",
            Rpc::TrackHolePunch => "TrackHolePunch",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Longest latency the histograms hold; longer calls are recorded as this (a call that slow has
/// failed the soak long before).
const MAX_LATENCY_US: u64 = 120_000_000;

/// Calls of one RPC over one span.
#[derive(Debug, Clone)]
pub struct RpcTally {
    /// Latency of every completed call (answered or refused), in microseconds.
    pub latency_us: Histogram<u64>,
    /// Failed calls by gRPC code name (`NotFound`, `Unavailable`, …).
    pub errors: BTreeMap<String, u64>,
}

impl Default for RpcTally {
    fn default() -> Self {
        RpcTally {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("valid histogram bounds"),
            errors: BTreeMap::new(),
        }
    }
}

impl RpcTally {
    /// Completed calls, failed ones included.
    pub fn calls(&self) -> u64 {
        self.latency_us.len()
    }

    /// Failed calls.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The latency at `quantile` (0.0–1.0).
    pub fn latency(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_quantile(quantile))
    }

    /// The longest latency.
    pub fn max_latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.max())
    }

    fn record(&mut self, latency: Duration, error: Option<&str>) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(micros.clamp(1, MAX_LATENCY_US));
        if let Some(code) = error {
            *self.errors.entry(code.to_owned()).or_default() += 1;
        }
    }

    fn merge(&mut self, other: &RpcTally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with the same bounds merge");
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
    }
}

/// Calls of every RPC over one span.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    rpcs: [RpcTally; 3],
}

impl Tally {
    /// The calls of `rpc`.
    pub fn rpc(&self, rpc: Rpc) -> &RpcTally {
        &self.rpcs[rpc.index()]
    }

    /// Completed calls of every RPC.
    pub fn calls(&self) -> u64 {
        self.rpcs.iter().map(RpcTally::calls).sum()
    }

    /// Failed calls of every RPC.
    pub fn failed(&self) -> u64 {
        self.rpcs.iter().map(RpcTally::failed).sum()
    }

    /// Every RPC's calls in one histogram and one error table.
    pub fn all(&self) -> RpcTally {
        let mut all = RpcTally::default();
        for rpc in &self.rpcs {
            all.merge(rpc);
        }
        all
    }
}

#[derive(Debug, Default)]
struct Spans {
    interval: Tally,
    measured: Option<Tally>,
    run: Tally,
}

/// Shared by every simulated client: records each call into every open span.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    spans: Mutex<Spans>,
}

impl Recorder {
    /// Records one completed call; `error` is the gRPC code name of a refused one.
    pub(crate) fn record(&self, rpc: Rpc, latency: Duration, error: Option<&str>) {
        let mut spans = self.spans.lock().expect("recorder lock");
        spans.interval.rpcs[rpc.index()].record(latency, error);
        spans.run.rpcs[rpc.index()].record(latency, error);
        if let Some(measured) = &mut spans.measured {
            measured.rpcs[rpc.index()].record(latency, error);
        }
    }

    /// Ends the warm-up: from now on calls also count for the measured phase.
    pub(crate) fn start_measuring(&self) {
        self.spans.lock().expect("recorder lock").measured = Some(Tally::default());
    }

    /// The calls since the previous call of this method.
    pub(crate) fn take_interval(&self) -> Tally {
        std::mem::take(&mut self.spans.lock().expect("recorder lock").interval)
    }

    /// The calls of the measured phase (empty if it never started) and of the whole run.
    pub(crate) fn finish(&self) -> (Tally, Tally) {
        let spans = self.spans.lock().expect("recorder lock");
        (
            spans.measured.clone().unwrap_or_default(),
            spans.run.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_count_in_every_open_span() {
        let recorder = Recorder::default();
        recorder.record(Rpc::Register, Duration::from_millis(2), None);
        recorder.start_measuring();
        recorder.record(Rpc::GetAddrInfo, Duration::from_millis(5), Some("NotFound"));
        recorder.record(Rpc::GetAddrInfo, Duration::from_millis(7), None);
        let interval = recorder.take_interval();
        assert_eq!(interval.calls(), 3);
        assert_eq!(recorder.take_interval().calls(), 0);
        let (measured, run) = recorder.finish();
        assert_eq!(measured.calls(), 2);
        assert_eq!(measured.rpc(Rpc::Register).calls(), 0);
        assert_eq!(run.calls(), 3);
        assert_eq!(run.failed(), 1);
        assert_eq!(run.rpc(Rpc::GetAddrInfo).errors["NotFound"], 1);
        let max = run.all().max_latency();
        assert!(max >= Duration::from_millis(7) && max < Duration::from_millis(8));
    }
}
