//! The CONNECT/SYNC exchange on one `/libp2p/dcutr` stream, for either role.
//!
//! Follows the spec `relay/DCUtR.md` ("The protocol", steps 1–5) and the stock crate's
//! `src/protocol/outbound.rs` (initiator, the spec's B) and `src/protocol/inbound.rs` (responder,
//! A), with the same checks (wrong type, empty CONNECT, relayed addresses not dialed). The only
//! additions are the step records: every step is
//! pushed into a [`Progress`] log with the instant it happened, so the handler can report it even
//! if the exchange later fails or times out.

use std::{
    collections::VecDeque,
    mem,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::{AsyncRead, AsyncWrite};
use futures_timer::Delay;
use libp2p::Multiaddr;

use crate::message::{self, expect_type, HolePunch, MessageError, Offer, Type};

/// One step of the exchange, as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Our CONNECT is written and flushed.
    ConnectSent { addrs: Vec<Multiaddr>, at: Instant },
    /// The remote's CONNECT arrived.
    ConnectReceived { offer: Offer, at: Instant },
    /// Initiator: our CONNECT → their CONNECT.
    RttMeasured { rtt: Duration, at: Instant },
    /// Initiator: our SYNC is written and flushed.
    SyncSent { at: Instant },
    /// Responder: the remote's SYNC arrived.
    SyncReceived { at: Instant },
}

/// A log of steps written by the exchange and drained by the connection handler.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(Arc<Mutex<VecDeque<Step>>>);

impl Progress {
    fn push(&self, step: Step) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(step);
    }

    /// Takes every step logged so far.
    pub(crate) fn drain(&self) -> VecDeque<Step> {
        mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// How long the initiator waits after sending SYNC before it dials: half the measured RTT, so
/// that its dial and the responder's (sent when SYNC arrives) leave at about the same time.
pub(crate) fn dial_delay(rtt: Duration) -> Duration {
    rtt / 2
}

/// The initiator's exchange (spec's B). Returns the remote's dialable addresses once it is time
/// to dial.
pub(crate) async fn initiate<S>(
    mut stream: S,
    candidates: impl FnOnce() -> Vec<Multiaddr>,
    progress: Progress,
) -> Result<Vec<Multiaddr>, MessageError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (connect, sent) = HolePunch::connect(&candidates());
    message::write(&mut stream, &connect).await?;
    let sent_at = Instant::now();
    progress.push(Step::ConnectSent {
        addrs: sent,
        at: sent_at,
    });

    let reply = message::read(&mut stream).await?;
    let received_at = Instant::now();
    let rtt = received_at - sent_at;
    expect_type(&reply, Type::Connect)?;
    let offer = Offer::parse(reply.obs_addrs);
    let offered_nothing = offer.addrs.is_empty() && offer.unparsable == 0;
    progress.push(Step::ConnectReceived {
        offer: offer.clone(),
        at: received_at,
    });
    progress.push(Step::RttMeasured {
        rtt,
        at: received_at,
    });
    if offered_nothing {
        return Err(MessageError::NoAddresses);
    }

    message::write(&mut stream, &HolePunch::sync()).await?;
    progress.push(Step::SyncSent { at: Instant::now() });

    Delay::new(dial_delay(rtt)).await;
    Ok(offer.dialable())
}

/// The responder's exchange (spec's A). Returns the remote's dialable addresses when SYNC
/// arrives, which is the moment to dial.
pub(crate) async fn respond<S>(
    mut stream: S,
    candidates: impl FnOnce() -> Vec<Multiaddr>,
    progress: Progress,
) -> Result<Vec<Multiaddr>, MessageError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connect = message::read(&mut stream).await?;
    let received_at = Instant::now();
    expect_type(&connect, Type::Connect)?;
    let offer = Offer::parse(connect.obs_addrs);
    let offered_nothing = offer.addrs.is_empty() && offer.unparsable == 0;
    progress.push(Step::ConnectReceived {
        offer: offer.clone(),
        at: received_at,
    });
    if offered_nothing {
        return Err(MessageError::NoAddresses);
    }

    // Read now, not when the relayed connection was made: candidates may have arrived since.
    let (reply, sent) = HolePunch::connect(&candidates());
    message::write(&mut stream, &reply).await?;
    progress.push(Step::ConnectSent {
        addrs: sent,
        at: Instant::now(),
    });

    let sync = message::read(&mut stream).await?;
    let received_at = Instant::now();
    expect_type(&sync, Type::Sync)?;
    progress.push(Step::SyncReceived { at: received_at });
    Ok(offer.dialable())
}

#[cfg(test)]
mod tests {
    use futures::AsyncWriteExt;
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

    use super::*;

    fn pipe() -> (
        Compat<tokio::io::DuplexStream>,
        Compat<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(8192);
        (a.compat(), b.compat())
    }

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn kinds(progress: &Progress) -> Vec<&'static str> {
        progress
            .drain()
            .iter()
            .map(|s| match s {
                Step::ConnectSent { .. } => "connect_sent",
                Step::ConnectReceived { .. } => "connect_received",
                Step::RttMeasured { .. } => "rtt",
                Step::SyncSent { .. } => "sync_sent",
                Step::SyncReceived { .. } => "sync_received",
            })
            .collect()
    }

    #[tokio::test]
    async fn both_roles_exchange_addresses() {
        let (b_end, a_end) = pipe();
        let b_addrs = vec![
            addr("/ip4/10.0.0.2/tcp/2"),
            addr("/ip4/9.9.9.9/tcp/1/p2p-circuit"),
        ];
        let a_addrs = vec![addr("/ip4/10.0.0.1/tcp/1")];
        let (b_progress, a_progress) = (Progress::default(), Progress::default());
        let (b, a) = tokio::join!(
            initiate(b_end, || b_addrs.clone(), b_progress.clone()),
            respond(a_end, || a_addrs.clone(), a_progress.clone()),
        );
        assert_eq!(b.unwrap(), a_addrs);
        // The relayed address is reported as offered but not dialed.
        assert_eq!(a.unwrap(), vec![b_addrs[0].clone()]);
        assert_eq!(
            kinds(&b_progress),
            ["connect_sent", "connect_received", "rtt", "sync_sent"]
        );
        assert_eq!(
            kinds(&a_progress),
            ["connect_received", "connect_sent", "sync_received"]
        );
    }

    #[tokio::test]
    async fn responder_refuses_sync_first_and_empty_connect() {
        let (mut b_end, a_end) = pipe();
        b_end
            .write_all(&message::encode(&HolePunch::sync()))
            .await
            .unwrap();
        let err = respond(a_end, Vec::new, Progress::default())
            .await
            .unwrap_err();
        assert!(matches!(err, MessageError::UnexpectedType { .. }), "{err}");

        let (mut b_end, a_end) = pipe();
        let (empty, _) = HolePunch::connect(&[]);
        b_end.write_all(&message::encode(&empty)).await.unwrap();
        let progress = Progress::default();
        let err = respond(a_end, Vec::new, progress.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, MessageError::NoAddresses), "{err}");
        // The empty CONNECT is still on record.
        assert_eq!(kinds(&progress), ["connect_received"]);
    }

    #[tokio::test]
    async fn initiator_refuses_empty_connect_and_reports_rtt_first() {
        let (b_end, a_end) = pipe();
        let progress = Progress::default();
        let (b, a) = tokio::join!(
            initiate(
                b_end,
                || vec![addr("/ip4/10.0.0.2/tcp/2")],
                progress.clone()
            ),
            respond(a_end, Vec::new, Progress::default()),
        );
        assert!(matches!(b.unwrap_err(), MessageError::NoAddresses));
        // The responder waits for SYNC that never comes; the initiator closed the stream.
        assert!(matches!(a.unwrap_err(), MessageError::Io(_)));
        assert_eq!(
            kinds(&progress),
            ["connect_sent", "connect_received", "rtt"]
        );
    }

    #[test]
    fn dial_waits_half_the_rtt() {
        assert_eq!(
            dial_delay(Duration::from_millis(80)),
            Duration::from_millis(40)
        );
    }
}
