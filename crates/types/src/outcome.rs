//! The enums a hole punch result is described with: how it ended, how each attempt ended, what a
//! latency measurement measured, the handshake role and role strategy of the dials, and how an
//! address relates to the result. Each is stored and reported by its upper-case name
//! ([`Outcome::as_str`]); the wire's numbers are converted in `punchr-proto`.

/// Defines a string-backed enum stored as its upper-case name.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses a stored name.
            pub fn from_stored(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum! {
    /// Overall outcome of a hole punch (`punchr-original.md` §7.3).
    Outcome {
        /// Not classified.
        Unknown = "UNKNOWN",
        /// The connection through the relay failed.
        NoConnection = "NO_CONNECTION",
        /// Connected, but the remote did not open `/libp2p/dcutr` in time.
        NoStream = "NO_STREAM",
        /// No DCUtR stream, relay-only addresses served, yet a direct connection exists.
        ConnectionReversed = "CONNECTION_REVERSED",
        /// Stopped by the user.
        Cancelled = "CANCELLED",
        /// All attempts failed, a protocol error, or an attempt timed out.
        Failed = "FAILED",
        /// An attempt produced a direct connection.
        Success = "SUCCESS",
    }
}

stored_enum! {
    /// How a client's hole-punch dials chose their side of the direct connection's handshakes
    /// (`punchr_dcutr::RoleStrategy`).
    RoleStrategy {
        /// Always the DCUtR spec's role, as stock rust-libp2p.
        Spec = "SPEC",
        /// From the remote's agent version, else client on attempts 1-2 and server on 3.
        Adaptive = "ADAPTIVE",
    }
}

stored_enum! {
    /// Our side of the direct connection's security and muxer handshakes in an attempt's dial.
    HandshakeRole {
        /// The handshakes' initiator (QUIC: the QUIC client).
        Client = "CLIENT",
        /// Their responder.
        Server = "SERVER",
    }
}

stored_enum! {
    /// Outcome of one DCUtR attempt.
    AttemptOutcome {
        /// Not classified.
        Unknown = "UNKNOWN",
        /// A direct dial succeeded without a hole punch.
        DirectDial = "DIRECT_DIAL",
        /// The DCUtR exchange broke the protocol.
        ProtocolError = "PROTOCOL_ERROR",
        /// Stopped by the user.
        Cancelled = "CANCELLED",
        /// No event within the deadline.
        Timeout = "TIMEOUT",
        /// The hole punch dial failed.
        Failed = "FAILED",
        /// The hole punch produced a direct connection.
        Success = "SUCCESS",
    }
}

stored_enum! {
    /// What a latency measurement measured.
    LatencyKind {
        /// Client to the relay.
        ToRelay = "TO_RELAY",
        /// Client to the remote over the relayed connection.
        ToRemoteThroughRelay = "TO_REMOTE_THROUGH_RELAY",
        /// Client to the remote over the direct connection.
        ToRemoteAfterHolePunch = "TO_REMOTE_AFTER_HOLE_PUNCH",
    }
}

stored_enum! {
    /// How a remote address relates to a hole punch result.
    Relationship {
        /// Served by GetAddrInfo before the punch.
        Initial = "INITIAL",
        /// Remote address of a connection open after the punch.
        Final = "FINAL",
    }
}
