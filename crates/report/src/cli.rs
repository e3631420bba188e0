//! `punchr-server report`: the command line around [`crate::build_report`].

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use punchr_store::{now_unix_nanos, Store};

use crate::{build_report, parse_time_bound, render, Report, ReportError, ReportFilter};

/// Print what a campaign measured: success rates with 95 % intervals, splits by transport, IP
/// version, attempt, agent, client and NAT pair, time to direct connection, failure reasons and
/// outcomes over time.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Database to read: a SQLite file path or a postgres:// URL [default: the server's --db].
    #[arg(long, env = "PUNCHR_REPORT_DB")]
    pub db: Option<String>,
    /// Only results stored at or after this time: RFC 3339 (2025-11-20T08:00:00Z), a date, or a
    /// span back from now (30m, 24h, 7d).
    #[arg(long, env = "PUNCHR_REPORT_SINCE")]
    pub since: Option<String>,
    /// Only results stored before this time (same forms as --since).
    #[arg(long, env = "PUNCHR_REPORT_UNTIL")]
    pub until: Option<String>,
    /// Only results reported with API keys of this name.
    #[arg(long, env = "PUNCHR_REPORT_API_KEY_NAME")]
    pub api_key_name: Option<String>,
    /// Width of the time buckets (5m, 1h, 1d); chosen from the time span when absent.
    #[arg(long, env = "PUNCHR_REPORT_BUCKET", value_parser = parse_bucket_seconds)]
    pub bucket: Option<i64>,
    /// Output on standard output.
    #[arg(long, env = "PUNCHR_REPORT_FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write a self-contained HTML page with charts to this file.
    #[arg(long, env = "PUNCHR_REPORT_HTML")]
    pub html: Option<PathBuf>,
}

/// Output format on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text tables.
    Text,
    /// The report as JSON (the dashboard's `/api/report` serves the same).
    Json,
}

fn parse_bucket_seconds(text: &str) -> Result<i64, String> {
    crate::parse_bucket(text).map_err(|e| e.to_string())
}

impl ReportArgs {
    /// The filter these flags describe, with relative times counted back from `now_ns`.
    pub fn filter(&self, now_ns: i64) -> Result<ReportFilter, ReportError> {
        let since = self
            .since
            .as_deref()
            .map(|t| parse_time_bound(t, now_ns))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|t| parse_time_bound(t, now_ns))
            .transpose()?;
        if let (Some(since_ns), Some(until_ns)) = (since, until) {
            if since_ns >= until_ns {
                return Err(ReportError::EmptyRange {
                    since: self.since.clone().unwrap_or_default(),
                    until: self.until.clone().unwrap_or_default(),
                });
            }
        }
        Ok(ReportFilter {
            since,
            until,
            api_key_name: self.api_key_name.clone(),
            api_key_id: None,
            bucket_seconds: self.bucket,
        })
    }
}

/// Runs the command: opens the database (`--db`, else `default_db`), builds the report, writes
/// the HTML file if asked, and returns what to print on standard output.
pub async fn run(args: &ReportArgs, default_db: &str) -> Result<String, ReportError> {
    let filter = args.filter(now_unix_nanos())?;
    let location = args.db.as_deref().unwrap_or(default_db);
    let store = open_existing(location).await?;
    let reader = store.read_only();
    let report = async {
        crate::refresh_facts(&store).await?;
        build_report(&reader, &filter).await
    }
    .await;
    reader.close().await;
    store.close().await;
    let report = report?;
    if let Some(path) = &args.html {
        write_html(&report, path)?;
    }
    Ok(match args.format {
        Format::Text => render::text::render(&report),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&report).expect("a report serialises");
            json.push('\n');
            json
        }
    })
}

/// Opens a database that must exist already: a report on a mistyped SQLite path would otherwise
/// create an empty database and report nothing.
async fn open_existing(location: &str) -> Result<Store, ReportError> {
    let is_url = location.contains("://") || location.starts_with("sqlite:");
    if !is_url && !Path::new(location).is_file() {
        return Err(ReportError::Store(punchr_store::StoreError::InvalidLocation {
            location: location.to_owned(),
            reason: "no such file; pass --db with the server's database (a SQLite file or a postgres:// URL)".into(),
        }));
    }
    Ok(Store::open(location).await?)
}

fn write_html(report: &Report, path: &Path) -> Result<(), ReportError> {
    let page = render::html::render(report, "Punchr report");
    std::fs::write(path, page).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        report: ReportArgs,
    }

    #[test]
    fn flags_become_a_filter() {
        let args = Command::parse_from([
            "report",
            "--since",
            "24h",
            "--until",
            "now",
            "--bucket",
            "15m",
            "--api-key-name",
            "alice",
        ])
        .report;
        let now = 1_764_000_000_000_000_000;
        let filter = args.filter(now).unwrap();
        assert_eq!(filter.since, Some(now - 86_400 * 1_000_000_000));
        assert_eq!(filter.until, Some(now));
        assert_eq!(filter.bucket_seconds, Some(900));
        assert_eq!(filter.api_key_name.as_deref(), Some("alice"));
        assert_eq!(args.format, Format::Text);
    }

    #[test]
    fn empty_ranges_and_bad_buckets_are_refused() {
        let args = Command::parse_from(["report", "--since", "1h", "--until", "2h"]).report;
        assert!(matches!(
            args.filter(1_764_000_000_000_000_000),
            Err(ReportError::EmptyRange { .. })
        ));
        assert!(Command::try_parse_from(["report", "--bucket", "often"]).is_err());
        assert!(Command::try_parse_from(["report", "--format", "xml"]).is_err());
    }
}
