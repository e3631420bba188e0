//! The Punchr client (work in progress): hole punches the NATed peers the server hands out and
//! reports every attempt.
//!
//! - [`outcome`]: the classification of one hole punch as a state machine without I/O, after
//!   the original punchr's rules.

pub mod outcome;
