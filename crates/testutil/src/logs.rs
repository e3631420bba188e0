//! Checks of what a binary wrote to a log file (`punchr-logging`'s two formats): text without
//! terminal escape codes, or one JSON object per line.

/// Panics unless `log` is plain text: no ESC byte (an ANSI colour code starts with one), which
/// a file or the systemd journal would otherwise hold.
pub fn assert_plain_text(log: &str) {
    if let Some(line) = log.lines().find(|line| line.contains('\u{1b}')) {
        panic!("a log line holds an escape code: {line:?}");
    }
    assert!(!log.trim().is_empty(), "nothing was logged");
}

/// Every line of `log` parsed as a JSON object; panics at the first line that is not one.
pub fn json_lines(log: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let lines: Vec<_> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(object)) => object,
            _ => panic!("not a JSON object: {line:?}"),
        })
        .collect();
    assert!(!lines.is_empty(), "nothing was logged");
    lines
}

/// The JSON lines of `target` whose `event` is `event`.
pub fn json_events<'a>(
    lines: &'a [serde_json::Map<String, serde_json::Value>],
    target: &str,
    event: &str,
) -> Vec<&'a serde_json::Map<String, serde_json::Value>> {
    lines
        .iter()
        .filter(|line| line.get("target").and_then(|t| t.as_str()) == Some(target))
        .filter(|line| line.get("event").and_then(|e| e.as_str()) == Some(event))
        .collect()
}
