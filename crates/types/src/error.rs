//! One way to put an error and its causes on one line, for a binary's last word and for the
//! dial errors a hole punch records.

use std::error::Error;

/// An error and its causes on one line: each cause is joined with ": " unless the line already
/// says it (sqlx's, libp2p's and many of our errors repeat their source in their own message, so
/// the usual cause-by-cause printing says things twice).
pub fn error_line(error: &dyn Error) -> String {
    let mut line = String::new();
    let mut cause = Some(error);
    while let Some(current) = cause {
        let text = current.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = current.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    /// An error that says `message` and has `source` as its cause.
    #[derive(Debug)]
    struct Wrapped {
        message: String,
        source: std::io::Error,
    }

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let quiet = Wrapped {
            message: "dial failed".into(),
            source: std::io::Error::other("connection refused"),
        };
        assert_eq!(error_line(&quiet), "dial failed: connection refused");
        let repeating = Wrapped {
            message: "dial failed: connection refused".into(),
            source: std::io::Error::other("connection refused"),
        };
        assert_eq!(error_line(&repeating), "dial failed: connection refused");
    }
}
