//! The one logging set-up of Punchr's binaries (`punchr-server`, `punchr-honeypot`,
//! `punchr-client`, `punchr-lab`), so that they all log alike wherever their output goes.
//!
//! [`init`] installs a `tracing` subscriber that
//! - filters by `RUST_LOG` (default `info`);
//! - writes to standard error, leaving standard output to what a command prints (a report, a new
//!   API key, a lab's table), so `punchr-server report --format json > report.json` holds the
//!   report alone;
//! - writes plain text, with ANSI colours only when standard error is a terminal and `NO_COLOR`
//!   is unset: a log file or the systemd journal gets no escape codes;
//! - or, with [`LogFormat::Json`], one JSON object per line (`timestamp`, `level`, `target` and
//!   the event's fields at the top level) for log shippers and `jq`.
//!
//! Each binary has a `--log-format` flag with its own environment variable
//! (`PUNCHR_<COMPONENT>_LOG_FORMAT`) of type [`LogFormat`]. Which targets and fields events use
//! is `punchr_types::log_target`.

use std::ffi::OsString;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether text lines get ANSI colours: only on a terminal, and never with a non-empty
/// `NO_COLOR` (<https://no-color.org>).
pub fn use_colours(is_terminal: bool, no_color: Option<OsString>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Installs the subscriber for this process (once, at the start of `main`).
///
/// # Panics
///
/// If a global subscriber is already installed.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(use_colours(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_colours(true, None));
        assert!(use_colours(true, Some(OsString::new())));
        assert!(!use_colours(true, Some("1".into())));
        assert!(!use_colours(false, None));
    }
}
