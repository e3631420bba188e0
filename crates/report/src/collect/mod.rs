//! Building a [`Report`]: first the facts of new results are derived ([`facts`]), then one SQL
//! query per section aggregates them with `GROUP BY`, concurrently on the store's pool. Every
//! query selects its results with the same condition ([`Scope::condition`]), so the sections add
//! up.

mod attempts;
mod direct;
mod facts;
mod failures;
mod families;
mod groups;
mod summary;

use punchr_store::{now_unix_nanos, Outcome, ReadOnlyStore, Store};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::filter::{check_bucket, rfc3339, Scope, MAX_BUCKETS};
use crate::model::{OutcomeCounts, Report, ReportScope};
use crate::{ReportError, ReportFilter};
use punchr_types::log_target::REPORT;

/// Bucket widths to choose from, seconds: 1 min … 1 week.
const BUCKET_CHOICES: [i64; 8] = [60, 300, 900, 3_600, 10_800, 21_600, 86_400, 604_800];

/// At most this many buckets when the width is chosen automatically.
const MAX_AUTO_BUCKETS: i64 = 60;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Builds the report over the results `filter` selects, reading only. The facts of results the
/// store's write path did not store (bulk imports, older databases) appear once the store has
/// derived them ([`refresh_facts`]; the server does that every few seconds).
pub async fn build_report(
    store: &ReadOnlyStore,
    filter: &ReportFilter,
) -> Result<Report, ReportError> {
    let scope = Scope::resolve(store, filter).await?;
    let pool = store.pool();
    let condition = scope.condition("f");
    let span = span(pool, &condition).await?;
    let bucket_seconds = match filter.bucket_seconds {
        Some(seconds) => check_bucket_count(check_bucket(seconds)?, &span)?,
        None => choose_bucket_seconds(&span),
    };
    let bucket_ns = bucket_seconds * NANOS_PER_SECOND;

    let (summary, time_to_direct, agents, families, nat_pairs, failures) = tokio::try_join!(
        timed("summary", summary::summary(pool, &condition, bucket_ns)),
        timed("time to direct", attempts::time_to_direct(pool, &condition)),
        timed("remote agents", groups::by_remote_agent(pool, &condition)),
        timed("agent families", families::by_family(pool, &condition)),
        timed("NAT pairs", groups::by_nat_pair(pool, &condition)),
        timed("failure reasons", failures::failure_reasons(pool, &scope)),
    )?;
    let over_time = groups::over_time(&summary);
    let direct = direct::by_direct_connection(&summary);
    let attempt_rows = attempts::attempt_counts(&summary);
    let clients = groups::by_client(pool, &summary).await?;

    let mut outcomes = OutcomeCounts::default();
    for bucket in &over_time {
        outcomes.add_all(&bucket.outcomes);
    }
    let direct = direct.finish();
    let by_attempt = attempts::split(attempt_rows, outcomes.success, time_to_direct.count);
    Ok(Report {
        generated_at: rfc3339(now_unix_nanos()),
        scope: ReportScope {
            since: filter.since.map(rfc3339),
            until: filter.until.map(rfc3339),
            api_key_name: filter.api_key_name.clone(),
            first_result: span.first.map(rfc3339),
            last_result: span.last.map(rfc3339),
            engine: store.engine().name().to_owned(),
        },
        published_rate: outcomes.published_rate(),
        end_to_end_rate: outcomes.end_to_end_rate(),
        outcomes,
        by_transport: direct.by_transport,
        by_ip_version: direct.by_ip_version,
        by_attempt,
        by_remote_agent: agents,
        by_client: clients,
        by_client_family: families.by_client,
        by_remote_family: families.by_remote,
        by_nat_pair: nat_pairs,
        time_to_direct,
        failure_reasons: failures.results,
        attempt_failure_reasons: failures.attempts,
        bucket_seconds,
        over_time,
        transport_over_time: direct.over_time,
    })
}

/// Runs one section's queries and logs how long they took (target `punchr::report`, debug).
async fn timed<T>(
    section: &'static str,
    work: impl std::future::Future<Output = Result<T, ReportError>>,
) -> Result<T, ReportError> {
    let started = std::time::Instant::now();
    let result = work.await;
    tracing::debug!(target: REPORT, event = "report_section", section, elapsed_ms = started.elapsed().as_millis() as u64, "report section");
    result
}

/// When the results in scope were stored.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: Option<i64>,
    last: Option<i64>,
}

async fn span(pool: &AnyPool, condition: &str) -> Result<Span, ReportError> {
    let row = sqlx::query(&format!(
        "SELECT MIN(f.created_at), MAX(f.created_at) FROM report_facts f WHERE {condition}"
    ))
    .fetch_one(pool)
    .await?;
    Ok(Span {
        first: row.try_get(0)?,
        last: row.try_get(1)?,
    })
}

/// Has the store derive the facts of results stored without them (see
/// [`Store::backfill_report_facts`]); returns how many. The server calls this every few seconds
/// and `punchr-server report` before it reads.
pub async fn refresh_facts(store: &Store) -> Result<u64, ReportError> {
    facts::refresh(store).await
}

/// Refuses a width that splits the span of the results in scope into more than [`MAX_BUCKETS`].
fn check_bucket_count(bucket_seconds: i64, span: &Span) -> Result<i64, ReportError> {
    let (Some(first), Some(last)) = (span.first, span.last) else {
        return Ok(bucket_seconds);
    };
    let bucket_ns = bucket_seconds * NANOS_PER_SECOND;
    let buckets = last.div_euclid(bucket_ns) - first.div_euclid(bucket_ns) + 1;
    if buckets > MAX_BUCKETS {
        return Err(ReportError::TooManyBuckets {
            bucket_seconds,
            buckets,
            max: MAX_BUCKETS,
        });
    }
    Ok(bucket_seconds)
}

/// The narrowest width that splits the span into at most [`MAX_AUTO_BUCKETS`] buckets.
fn choose_bucket_seconds(span: &Span) -> i64 {
    let (Some(first), Some(last)) = (span.first, span.last) else {
        return 3_600;
    };
    let seconds = (last - first) / NANOS_PER_SECOND + 1;
    BUCKET_CHOICES
        .into_iter()
        .find(|width| seconds / width < MAX_AUTO_BUCKETS)
        .unwrap_or(BUCKET_CHOICES[BUCKET_CHOICES.len() - 1])
}

/// The stored outcome name as an [`Outcome`]; the schema's CHECK constraint admits no others.
fn outcome_of(text: &str) -> Outcome {
    Outcome::from_stored(text).unwrap_or(Outcome::Unknown)
}

/// A `COUNT(*)` column.
fn count(row: &AnyRow, index: usize) -> Result<u64, sqlx::Error> {
    let value: i64 = row.try_get(index)?;
    Ok(u64::try_from(value).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fit_the_span() {
        let span = |seconds: i64| Span {
            first: Some(0),
            last: Some(seconds * NANOS_PER_SECOND),
        };
        assert_eq!(choose_bucket_seconds(&span(30)), 60);
        assert_eq!(choose_bucket_seconds(&span(3_600)), 300);
        assert_eq!(choose_bucket_seconds(&span(86_400)), 3_600);
        assert_eq!(choose_bucket_seconds(&span(30 * 86_400)), 86_400);
        assert_eq!(choose_bucket_seconds(&span(10 * 365 * 86_400)), 604_800);
        let empty = Span {
            first: None,
            last: None,
        };
        assert_eq!(choose_bucket_seconds(&empty), 3_600);
    }

    #[test]
    fn narrow_buckets_over_long_spans_are_refused() {
        let day = Span {
            first: Some(0),
            last: Some(86_400 * NANOS_PER_SECOND),
        };
        assert!(matches!(
            check_bucket_count(1, &day),
            Err(ReportError::TooManyBuckets {
                buckets: 86_401,
                ..
            })
        ));
        assert_eq!(check_bucket_count(300, &day).unwrap(), 300);
        // The automatic choice stays within the bound for any span up to ten years.
        let decade = Span {
            first: Some(0),
            last: Some(10 * 366 * 86_400 * NANOS_PER_SECOND),
        };
        assert!(check_bucket_count(choose_bucket_seconds(&decade), &decade).is_ok());
    }
}
