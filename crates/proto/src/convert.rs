//! The wire's enums and the shared vocabulary's ([`punchr_types`]), converted in one place: the
//! client builds requests with these and the server reads them with them.
//!
//! Outcomes and latency kinds map one to one. The wire's `UNKNOWN` role and role strategy (what
//! an original client sends by leaving the field out, or a client that does not say) has no
//! domain value: converting it fails with [`WireUnknown`], which a reader takes as "not said".

use std::fmt;

use punchr_types::{AttemptOutcome, HandshakeRole, LatencyKind, Outcome, RoleStrategy};

use crate::generated as pb;

/// Both directions of an enum that means the same on the wire and in the domain.
macro_rules! one_to_one {
    ($domain:ident <=> $wire:ident { $($variant:ident <=> $wire_variant:ident,)+ }) => {
        impl From<$domain> for pb::$wire {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => pb::$wire::$wire_variant,)+
                }
            }
        }

        impl From<pb::$wire> for $domain {
            fn from(value: pb::$wire) -> Self {
                match value {
                    $(pb::$wire::$wire_variant => $domain::$variant,)+
                }
            }
        }
    };
}

/// The domain to the wire, and the wire to the domain except for the wire's `UNKNOWN`.
macro_rules! unknown_on_the_wire {
    ($domain:ident <=> $wire:ident { $($variant:ident <=> $wire_variant:ident,)+ }) => {
        impl From<$domain> for pb::$wire {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => pb::$wire::$wire_variant,)+
                }
            }
        }

        impl TryFrom<pb::$wire> for $domain {
            type Error = WireUnknown;

            fn try_from(value: pb::$wire) -> Result<Self, WireUnknown> {
                match value {
                    pb::$wire::Unknown => Err(WireUnknown),
                    $(pb::$wire::$wire_variant => Ok($domain::$variant),)+
                }
            }
        }
    };
}

one_to_one!(Outcome <=> HolePunchOutcome {
    Unknown <=> Unknown,
    NoConnection <=> NoConnection,
    NoStream <=> NoStream,
    ConnectionReversed <=> ConnectionReversed,
    Cancelled <=> Cancelled,
    Failed <=> Failed,
    Success <=> Success,
});

one_to_one!(AttemptOutcome <=> HolePunchAttemptOutcome {
    Unknown <=> Unknown,
    DirectDial <=> DirectDial,
    ProtocolError <=> ProtocolError,
    Cancelled <=> Cancelled,
    Timeout <=> Timeout,
    Failed <=> Failed,
    Success <=> Success,
});

one_to_one!(LatencyKind <=> LatencyMeasurementType {
    ToRelay <=> ToRelay,
    ToRemoteThroughRelay <=> ToRemoteThroughRelay,
    ToRemoteAfterHolePunch <=> ToRemoteAfterHolePunch,
});

unknown_on_the_wire!(HandshakeRole <=> HandshakeRole {
    Client <=> Client,
    Server <=> Server,
});

unknown_on_the_wire!(RoleStrategy <=> RoleStrategy {
    Spec <=> Spec,
    Adaptive <=> Adaptive,
});

/// The wire's `UNKNOWN` value of an enum whose domain type has none: the sender did not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireUnknown;

impl fmt::Display for WireUnknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the wire value is UNKNOWN")
    }
}

impl std::error::Error for WireUnknown {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each domain value goes to the wire value of the same name and comes back.
    fn round_trips<D, W>(all: &[D])
    where
        D: Copy + PartialEq + fmt::Display + fmt::Debug + Into<W> + TryFrom<W>,
        W: Copy + fmt::Debug,
        W: WireName,
    {
        for &value in all {
            let wire: W = value.into();
            assert!(
                wire.name().ends_with(&value.to_string()),
                "{value} became {}",
                wire.name()
            );
            assert!(D::try_from(wire).ok() == Some(value), "{value} came back");
        }
    }

    trait WireName {
        fn name(&self) -> &'static str;
    }

    macro_rules! wire_name {
        ($($wire:ident),+) => {$(
            impl WireName for pb::$wire {
                fn name(&self) -> &'static str {
                    self.as_str_name()
                }
            }
        )+};
    }

    wire_name!(
        HolePunchOutcome,
        HolePunchAttemptOutcome,
        LatencyMeasurementType,
        HandshakeRole,
        RoleStrategy
    );

    #[test]
    fn every_value_has_the_wire_value_of_its_name() {
        round_trips::<Outcome, pb::HolePunchOutcome>(Outcome::ALL);
        round_trips::<AttemptOutcome, pb::HolePunchAttemptOutcome>(AttemptOutcome::ALL);
        round_trips::<LatencyKind, pb::LatencyMeasurementType>(LatencyKind::ALL);
        round_trips::<HandshakeRole, pb::HandshakeRole>(HandshakeRole::ALL);
        round_trips::<RoleStrategy, pb::RoleStrategy>(RoleStrategy::ALL);
    }

    #[test]
    fn an_unknown_role_on_the_wire_is_not_said() {
        assert_eq!(
            HandshakeRole::try_from(pb::HandshakeRole::Unknown),
            Err(WireUnknown)
        );
        assert_eq!(
            RoleStrategy::try_from(pb::RoleStrategy::Unknown),
            Err(WireUnknown)
        );
    }
}
