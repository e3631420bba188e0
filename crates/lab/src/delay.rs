//! The NFQUEUE delayer: link delay, jitter and loss without `tc netem`.
//!
//! The kernel this lab targets has no netem qdisc, but it has the xtables `NFQUEUE` target. The
//! lab sends both directions of a link to a queue with `iptables -t raw -A PREROUTING -i IF -j
//! NFQUEUE` (and `OUTPUT -o IF` on hosts); this program, running in the same namespace, holds
//! every queued packet for `delay ± jitter` (uniform, so packets may be reordered, as netem does)
//! and then accepts it, or drops it with probability `loss`. The raw table's hooks run before
//! conntrack, so a held packet has no half-made conntrack entry (see [`crate::topology`]).
//!
//! Packets are queued with metadata only (copy range 0): the verdict needs the packet id, not its
//! bytes. The `nfq` crate does not expose its netlink socket, so we find it as the one file
//! descriptor `Queue::open` added and wait on it with `ppoll` until the next packet is due or a
//! new one arrives; should that ever fail, the loop falls back to polling every 200 µs.

use std::collections::{BTreeSet, BinaryHeap};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};
use rand::{Rng, SeedableRng};

use crate::error::{LabError, Result};
use punchr_types::log_target::LAB;

/// Largest number of packets the kernel queues for us (held ones count).
const QUEUE_MAX_LEN: u32 = 16_384;
/// Wait at most this long between looks at the stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// What the delayer does to each packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayConfig {
    /// The NFQUEUE queue number.
    pub queue: u16,
    /// How long to hold each packet.
    pub delay: Duration,
    /// Uniform jitter around `delay`.
    pub jitter: Duration,
    /// Loss probability per packet.
    pub loss: f64,
    /// Seed for loss and jitter (random when absent).
    pub seed: Option<u64>,
}

/// Counters, logged at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DelayStats {
    /// Packets received from the queue.
    pub packets: u64,
    /// Packets dropped (loss).
    pub dropped: u64,
    /// Most packets held at once.
    pub max_held: usize,
}

struct Held {
    due: Instant,
    seq: u64,
    msg: Message,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed, so that the max-heap pops the earliest due packet (ties in arrival order).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// How long packet number `n` is held: `delay` plus a uniform sample of `[-jitter, +jitter]`,
/// never negative.
pub fn hold_time(config: &DelayConfig, rng: &mut impl Rng) -> Duration {
    if config.jitter.is_zero() {
        return config.delay;
    }
    let jitter = config.jitter.as_secs_f64();
    let offset = rng.gen_range(-jitter..=jitter);
    Duration::from_secs_f64((config.delay.as_secs_f64() + offset).max(0.0))
}

/// Open netlink sockets of the netfilter family (the directory listing's own descriptor is not a
/// socket, so it cannot be mistaken for one).
fn netfilter_sockets() -> BTreeSet<RawFd> {
    let sockopt = |fd: RawFd, option: libc::c_int| {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid pointer to an int and its length; a bad fd only yields an error.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(value)
    };
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|fd| {
                    sockopt(*fd, libc::SO_DOMAIN) == Some(libc::AF_NETLINK)
                        && sockopt(*fd, libc::SO_PROTOCOL) == Some(libc::NETLINK_NETFILTER)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn queue_error(what: &str, e: std::io::Error) -> LabError {
    LabError::io(format!("NFQUEUE: {what}"), e)
}

/// Opens and binds the queue, returning it with its socket if found.
fn open(config: &DelayConfig) -> Result<(Queue, Option<RawFd>)> {
    let before = netfilter_sockets();
    let mut queue = Queue::open().map_err(|e| queue_error("opening netlink socket", e))?;
    let added: Vec<_> = netfilter_sockets().difference(&before).copied().collect();
    let fd = match added.as_slice() {
        [fd] => Some(*fd),
        _ => None,
    };
    queue
        .bind(config.queue)
        .map_err(|e| queue_error(&format!("binding queue {}", config.queue), e))?;
    queue
        .set_copy_range(config.queue, 0)
        .map_err(|e| queue_error("setting copy range", e))?;
    queue
        .set_queue_max_len(config.queue, QUEUE_MAX_LEN)
        .map_err(|e| queue_error("setting queue length", e))?;
    queue.set_nonblocking(true);
    Ok((queue, fd))
}

/// Waits until `fd` is readable or `timeout` passes.
fn wait_readable(fd: Option<RawFd>, timeout: Duration) {
    let Some(fd) = fd else {
        std::thread::sleep(timeout.min(Duration::from_micros(200)));
        return;
    };
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask change.
    unsafe { libc::ppoll(&mut pollfd, 1, &ts, std::ptr::null()) };
}

/// Runs the delayer until `stop` is set, then accepts what it still holds and returns.
pub fn run(config: DelayConfig, stop: &AtomicBool) -> Result<DelayStats> {
    let (mut queue, fd) = open(&config)?;
    let mut rng = match config.seed {
        Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
        None => rand::rngs::StdRng::from_entropy(),
    };
    tracing::info!(
        target: LAB,
        event = "delayer_bound",
        queue = config.queue,
        delay_us = config.delay.as_micros() as u64,
        jitter_us = config.jitter.as_micros() as u64,
        loss = config.loss,
        socket_found = fd.is_some(),
        "delayer bound"
    );
    let mut held = BinaryHeap::new();
    let mut stats = DelayStats::default();
    let mut seq = 0u64;
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    stats.packets += 1;
                    if config.loss > 0.0 && rng.gen_bool(config.loss.min(1.0)) {
                        stats.dropped += 1;
                        msg.set_verdict(Verdict::Drop);
                        queue.verdict(msg).map_err(|e| queue_error("verdict", e))?;
                        continue;
                    }
                    seq += 1;
                    let due = Instant::now() + hold_time(&config, &mut rng);
                    held.push(Held { due, seq, msg });
                    stats.max_held = stats.max_held.max(held.len());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                Err(e) => return Err(queue_error("receiving", e)),
            }
        }
        let now = Instant::now();
        while held.peek().is_some_and(|h: &Held| h.due <= now) {
            let mut h = held.pop().expect("peeked");
            h.msg.set_verdict(Verdict::Accept);
            queue
                .verdict(h.msg)
                .map_err(|e| queue_error("verdict", e))?;
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            tracing::info!(
                target: LAB,
                event = "delayer_stats",
                packets = stats.packets,
                dropped = stats.dropped,
                max_held = stats.max_held,
                "delayer"
            );
            last_report = Instant::now();
        }
        let wait = held
            .peek()
            .map(|h| h.due.saturating_duration_since(Instant::now()))
            .unwrap_or(IDLE_WAIT)
            .min(IDLE_WAIT);
        wait_readable(fd, wait);
    }
    while let Some(mut h) = held.pop() {
        h.msg.set_verdict(Verdict::Accept);
        let _ = queue.verdict(h.msg);
    }
    tracing::info!(
        target: LAB,
        event = "delayer_stopped",
        packets = stats.packets,
        dropped = stats.dropped,
        max_held = stats.max_held,
        "delayer stopped"
    );
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_time_stays_within_jitter_and_never_goes_negative() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let config = DelayConfig {
            queue: 0,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(4),
            loss: 0.0,
            seed: None,
        };
        let samples: Vec<_> = (0..1000).map(|_| hold_time(&config, &mut rng)).collect();
        assert!(samples
            .iter()
            .all(|d| *d >= Duration::from_millis(6) && *d <= Duration::from_millis(14)));
        let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / 1000.0;
        assert!((mean - 0.010).abs() < 0.0005, "mean {mean}");
        let wide = DelayConfig {
            jitter: Duration::from_millis(50),
            ..config
        };
        assert!((0..1000).all(|_| hold_time(&wide, &mut rng) <= Duration::from_millis(60)));
        assert_eq!(
            hold_time(
                &DelayConfig {
                    jitter: Duration::ZERO,
                    ..config
                },
                &mut rng
            ),
            Duration::from_millis(10)
        );
    }
}
