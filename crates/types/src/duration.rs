//! The one duration grammar of Punchr's command lines and environment variables.

use std::time::Duration;

/// Parses `90s`, `10m`, `1h`, `500ms` or a bare number of seconds: the durations the server,
/// client and honeypot take on their command lines and in their environment.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 30s, 10m or 1h"))?;
    let seconds = match unit {
        "" | "s" => Some(value),
        "ms" => return Ok(Duration::from_millis(value)),
        "m" => value.checked_mul(60),
        "h" => value.checked_mul(3600),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use ms, s, m or h"
            ))
        }
    };
    seconds
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}
