//! The web dashboard as the server serves it: its JSON endpoints agree with the report, its page
//! loads nothing from elsewhere, the personal page needs the key in a POST body and never logs
//! it, and in headless Chromium the charts show the numbers in the database and refresh live.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common::browser::Browser;
use crate::common::dataset::{self, assert_known_numbers, Dataset};
use crate::common::{dashboard, form_value, get, get_with_head, post_form, start_server};
use punchr_report::dashboard::Health;
use punchr_report::{build_report, Report, ReportFilter};
use punchr_store::{now_unix_nanos, ConnectionEventRecord, PeerInfo, Store};
use punchr_testutil::{fixtures, on_both_engines, TestDb};
use serde_json::Value;
use sqlx::Row;

on_both_engines!(
    endpoints_agree_with_the_report,
    strangers_get_no_report_of_a_key_and_revoked_keys_see_nothing,
    buckets_are_bounded_and_never_overflow,
    every_response_carries_the_security_headers,
    hostile_names_and_agents_are_escaped,
    personal_page_shows_only_that_key_and_never_logs_it,
    chromium_shows_the_database_numbers_and_refreshes,
);

async fn strangers_get_no_report_of_a_key_and_revoked_keys_see_nothing(db: TestDb) {
    let Dataset { alice_secret, .. } = dataset::insert(&db.store).await;
    let server = start_server(&db).await;
    let addr = dashboard(&server);
    // Before: 200 with alice's report for anyone, and 404 for a name that does not exist.
    let (alice, alice_body) = get(addr, "/api/report?api_key_name=alice").await;
    let (mallory, mallory_body) = get(addr, "/api/report?api_key_name=mallory").await;
    assert_eq!((alice, mallory), (400, 400));
    assert_eq!(alice_body, mallory_body, "the answer tells no names apart");
    assert!(alice_body.contains("/me"), "{alice_body}");

    db.store
        .revoke_api_key("alice")
        .await
        .expect("revoke alice's key");
    let key = alice_secret.expose();
    let (status, page) = post_form(addr, "/me", &format!("key={}", form_value(key))).await;
    assert_eq!(status, 401, "a revoked key shows nothing");
    assert!(!page.contains("Hole punch results of alice"), "{page}");
    server.shutdown().await.expect("clean shutdown");
}

async fn buckets_are_bounded_and_never_overflow(db: TestDb) {
    dataset::insert(&db.store).await;
    // Spread the results over a year, so that 1 s buckets would be millions.
    for spread in [
        "UPDATE hole_punch_results SET created_at = created_at - id * 86400000000000",
        "UPDATE report_facts SET created_at = created_at - result_id * 86400000000000",
    ] {
        sqlx::query(spread).execute(db.store.pool()).await.unwrap();
    }
    let server = start_server(&db).await;
    let addr = dashboard(&server);
    for bucket in ["1s", "01s", "001s"] {
        let (status, body) = get(addr, &format!("/api/report?bucket={bucket}")).await;
        assert_eq!(status, 400, "bucket={bucket}: {body}");
        assert!(body.contains("more than the 1000"), "{body}");
    }
    for bucket in [
        "9223372036854775807s",
        "99999999999999999999w",
        "0s",
        "400d",
    ] {
        let (status, body) = get(addr, &format!("/api/report?bucket={bucket}")).await;
        assert_eq!(status, 400, "bucket={bucket}: {body}");
        assert!(body.contains("bucket"), "{body}");
    }
    let (status, json) = get(addr, "/api/report?bucket=1d").await;
    assert_eq!(status, 200, "{json}");
    let report: Report = serde_json::from_str(&json).unwrap();
    assert!(report.over_time.len() <= punchr_report::MAX_BUCKETS as usize);
    // The server still serves.
    let (status, _) = get(addr, "/api/health").await;
    assert_eq!(status, 200);
    server.shutdown().await.expect("clean shutdown");
}

async fn every_response_carries_the_security_headers(db: TestDb) {
    let server = start_server(&db).await;
    let addr = dashboard(&server);
    for path in [
        "/",
        "/dashboard.js",
        "/dashboard.css",
        "/api/health",
        "/api/report",
        "/api/report?bucket=often",
        "/me",
        "/no-such-page",
    ] {
        let (_, head, _) = get_with_head(addr, path).await;
        let head = head.to_ascii_lowercase();
        for expected in [
            "content-security-policy: default-src 'none'; script-src 'self'",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
        ] {
            assert!(head.contains(expected), "{path} lacks {expected}:\n{head}");
        }
    }
    server.shutdown().await.expect("clean shutdown");
}

async fn hostile_names_and_agents_are_escaped(db: TestDb) {
    let hostile = "<script>alert(1)</script>";
    let (_, secret) = db.store.create_api_key(hostile).await.expect("a key");
    let server = start_server(&db).await;
    let addr = dashboard(&server);
    let (status, page) =
        post_form(addr, "/me", &format!("key={}", form_value(secret.expose()))).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains(hostile), "the key name is escaped: {page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    server.shutdown().await.expect("clean shutdown");
}

/// Two NATed peers connected to the honeypot a moment ago.
async fn honeypot_saw_two_peers(store: &Store) {
    for _ in 0..2 {
        let remote = fixtures::peer_id();
        store
            .record_connection_event(&ConnectionEventRecord {
                local: PeerInfo::bare(fixtures::peer_id().to_string()),
                remote: PeerInfo::bare(remote.to_string()),
                connection_address: fixtures::relay_address(1, &remote),
                advertised_addresses: vec![fixtures::relay_address(2, &remote)],
                opened_at: now_unix_nanos(),
            })
            .await
            .expect("a connection event");
    }
}

async fn endpoints_agree_with_the_report(db: TestDb) {
    dataset::insert(&db.store).await;
    honeypot_saw_two_peers(&db.store).await;
    let server = start_server(&db).await;
    let addr = dashboard(&server);

    let (status, json) = get(addr, "/api/report").await;
    assert_eq!(status, 200, "{json}");
    let served: Report = serde_json::from_str(&json).expect("a report");
    assert_known_numbers(&served);
    let mut built = build_report(&db.store.read_only(), &ReportFilter::default())
        .await
        .expect("report");
    built.generated_at.clone_from(&served.generated_at);
    // Compared as text: parsing JSON floats back may differ from the computed ones in the last bit.
    assert!(
        serde_json::to_string(&built).unwrap() == json,
        "the dashboard serves exactly what `report --format json` prints"
    );

    let (_, json) = get(addr, "/api/report?since=24h&bucket=5m").await;
    let recent: Report = serde_json::from_str(&json).expect("a report");
    assert_eq!(recent.bucket_seconds, 300);
    let (status, body) = get(addr, "/api/report?since=yesterday").await;
    assert_eq!(status, 400);
    assert!(body.contains("RFC 3339"), "{body}");

    let (status, json) = get(addr, "/api/health").await;
    assert_eq!(status, 200, "{json}");
    let health: Health = serde_json::from_str(&json).expect("health");
    assert_eq!(health.active_clients, 2);
    assert_eq!(health.window_minutes, 60);
    assert_eq!(health.results_per_minute.len(), 60);
    assert_eq!(
        health
            .results_per_minute
            .iter()
            .map(|m| m.count)
            .sum::<u64>(),
        51
    );
    assert_eq!(
        health
            .honeypot_peers_per_minute
            .iter()
            .map(|m| m.count)
            .sum::<u64>(),
        2
    );
    assert!(health.server_errors.available);
    assert_eq!(health.server_errors.total, 0);
    assert_eq!(
        health.active_api_keys_metric,
        Some(0.0),
        "no gRPC request was made"
    );

    let (status, page) = get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/dashboard.js\">"));
    for asset in ["/", "/dashboard.js", "/dashboard.css"] {
        let (status, body) = get(addr, asset).await;
        assert_eq!(status, 200, "{asset}");
        let body = body.replace("http://www.w3.org/2000/svg", ""); // a namespace name, not a location
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    server.shutdown().await.expect("clean shutdown");
}

/// Everything any test of this binary logged, at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        logs
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn personal_page_shows_only_that_key_and_never_logs_it(db: TestDb) {
    let logs = captured_logs();
    let Dataset { alice_secret, .. } = dataset::insert(&db.store).await;
    let server = start_server(&db).await;
    let addr = dashboard(&server);
    let key = alice_secret.expose();

    let (status, form) = get(addr, "/me").await;
    assert_eq!(status, 200);
    assert!(form.contains("method=\"post\"") && form.contains("type=\"password\""));

    let (status, page) = post_form(addr, "/me", &format!("key={}", form_value(key))).await;
    assert_eq!(status, 200);
    assert!(page.contains("Hole punch results of alice"), "{page}");
    assert!(
        page.contains("75.0 % [53.1–88.8] (15/20)"),
        "alice's own rate"
    );
    assert!(!page.contains("bob"), "nothing of other volunteers");
    assert!(!page.contains(key), "the key is not echoed");

    let (status, page) = post_form(addr, "/me", "key=00000000-0000-4000-8000-000000000000").await;
    assert_eq!(status, 401);
    assert!(page.contains("Unknown or revoked API key"));
    let (status, _) = get(addr, &format!("/me?key={key}")).await;
    assert_eq!(
        status, 200,
        "a key in the address is ignored: the form is shown"
    );

    server.shutdown().await.expect("clean shutdown");
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "logs were captured");
    assert!(!logs.contains(key), "the API key reached a log");
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("punchr-report")
        .join(format!("{name}.png"))
}

/// The value of every `[data-metric]` element, by name.
const READ_METRICS: &str = "Object.fromEntries([...document.querySelectorAll('[data-metric]')].map(e => [e.dataset.metric, e.textContent]))";

async fn chromium_shows_the_database_numbers_and_refreshes(db: TestDb) {
    let data = dataset::insert(&db.store).await;
    honeypot_saw_two_peers(&db.store).await;
    let server = start_server(&db).await;
    let url = format!("http://{}", dashboard(&server));
    let engine = db.engine().name();

    // What the database says, counted here without the report code.
    let mut by_outcome = std::collections::BTreeMap::new();
    for row in sqlx::query("SELECT outcome, COUNT(*) FROM hole_punch_results GROUP BY outcome")
        .fetch_all(db.store.pool())
        .await
        .unwrap()
    {
        by_outcome.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
    }
    let (success, failed) = (by_outcome["SUCCESS"], by_outcome["FAILED"]);
    let total: i64 = by_outcome.values().sum();

    let mut browser = Browser::launch().await;
    browser.navigate(&url).await;
    browser
        .wait_for(
            "document.body.dataset.healthRendered && document.body.dataset.performanceRendered",
            Duration::from_secs(30),
        )
        .await;
    let metrics = browser.evaluate(READ_METRICS).await;
    let metric = |name: &str| {
        metrics[name]
            .as_str()
            .unwrap_or_else(|| panic!("no metric {name} in {metrics}"))
            .to_owned()
    };
    let published = success as f64 / (success + failed) as f64;
    assert_eq!(
        metric("published-rate"),
        format!("{:.1} %", published * 100.0)
    );
    assert_eq!(
        metric("published-fraction"),
        format!("{success}/{}", success + failed)
    );
    assert_eq!(metric("published-ci"), "59.8–85.8 %");
    assert_eq!(metric("end-to-end-fraction"), format!("{success}/{total}"));
    assert_eq!(
        metric("end-to-end-rate"),
        format!("{:.1} %", success as f64 / total as f64 * 100.0)
    );
    assert_eq!(
        (metric("ttd-p50"), metric("ttd-p90"), metric("ttd-count")),
        ("1.500 s".into(), "2.700 s".into(), "30".into())
    );
    assert_eq!(metric("active-clients"), "2");
    assert_eq!(metric("active-api-keys-metric"), "0");
    assert_eq!(metric("results-60m"), total.to_string());
    assert_eq!(metric("honeypot-peers-60m"), "2");
    assert_eq!(metric("server-errors-total"), "0");

    let shown = |selector: &str, attribute: &str| {
        format!("Object.fromEntries([...document.querySelectorAll('{selector}')].map(e => [e.getAttribute('{attribute}'), e.textContent]))")
    };
    let outcomes = browser
        .evaluate(&shown("#chart-outcomes text[data-outcome]", "data-outcome"))
        .await;
    for (outcome, count) in &by_outcome {
        assert_eq!(
            outcomes[outcome.as_str()],
            Value::from(count.to_string()),
            "{outcome} in {outcomes}"
        );
    }
    assert_eq!(outcomes["UNKNOWN"], "0");
    let attempts = browser
        .evaluate(&shown(
            "#chart-attempts text[data-attempt]",
            "data-successful",
        ))
        .await;
    assert_eq!(
        attempts,
        serde_json::json!({ "18": "18 (60.0 %)", "8": "8 (26.7 %)", "4": "4 (13.3 %)" })
    );
    let transports = browser
        .evaluate(&shown(
            "#chart-transport text[data-transport]",
            "data-transport",
        ))
        .await;
    assert_eq!(transports["TCP"], "66.7 % (20/30)");
    assert_eq!(transports["QUIC"], "50.0 % (10/20)");
    let bins = browser.evaluate("[...document.querySelectorAll('#chart-time-to-direct text[data-bin]')].map(e => Number(e.textContent))").await;
    assert_eq!(bins, serde_json::json!([2, 2, 5, 10, 11, 0, 0, 0, 0]));
    let tcp_points = browser.evaluate("document.querySelectorAll('#chart-transport-over-time circle[data-transport=\"TCP\"]').length").await;
    assert_eq!(tcp_points, 1, "one bucket, one point per transport");
    browser
        .screenshot(&screenshot_path(&format!("dashboard-{engine}")))
        .await;

    // A new result reaches the open page without a reload.
    let mut late = fixtures::hole_punch_result(data.bob.id, &data.bob_host, &data.kubo_remote, 999);
    late.latency_measurements.clear();
    db.store
        .insert_hole_punch_result(&late)
        .await
        .expect("a late result");
    let (total, success) = (total + 1, success + 1);
    browser
        .wait_for(
            &format!(
                "document.querySelector('[data-metric=\"results-60m\"]').textContent === '{total}'"
            ),
            Duration::from_secs(20),
        )
        .await;
    browser
        .wait_for(
            &format!("document.querySelector('[data-metric=\"published-fraction\"]').textContent === '{success}/{}'", success + failed),
            Duration::from_secs(40),
        )
        .await;

    // The personal page, used as a volunteer would: type the key, press the button.
    browser.navigate(&format!("{url}/me")).await;
    browser.type_into("#key", data.alice_secret.expose()).await;
    browser.click("button[type=submit]").await;
    browser
        .wait_for("document.querySelector('h1') && document.querySelector('h1').textContent.includes('alice')", Duration::from_secs(30))
        .await;
    let card = browser
        .evaluate("document.querySelector('#published-rate').textContent")
        .await;
    let card = card.as_str().unwrap();
    assert!(
        card.contains("75.0 %") && card.contains("(15/20)"),
        "{card}"
    );
    let address = browser.evaluate("location.href").await;
    assert!(
        !address
            .as_str()
            .unwrap()
            .contains(data.alice_secret.expose()),
        "the key stays out of the address"
    );
    browser
        .screenshot(&screenshot_path(&format!("personal-{engine}")))
        .await;
    server.shutdown().await.expect("clean shutdown");
}

/// The lab report's NAT matrix in headless Chromium: every label and cell text is shown whole
/// (none is clipped by its box or pushed off the page), however long, and the colours follow
/// the success rates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_matrix_with_every_label_whole() {
    use punchr_report::render::matrix::{matrix, MatrixCell, MATRIX_STYLE};
    use punchr_report::Rate;
    let long_row = "port-restricted behind a carrier-grade NAT with an unusually long name";
    let long_column = "symmetric (address-and-port-dependent mapping and filtering)";
    let cell = |row: &str, column: &str, successes, trials| MatrixCell {
        row: row.to_owned(),
        column: column.to_owned(),
        rate: Rate::new(successes, trials),
        punches: trials + 2,
        mark: "theory ✓ ← ↺".to_owned(),
        flag: (successes == 0).then(|| "⚠ disagrees".to_owned()),
        title: "remote → client only; the remote's SYN arrives as an ordinary inbound connection"
            .to_owned(),
    };
    let cells = [
        cell("full-cone", "port-restricted", 20, 20),
        cell("full-cone", long_column, 0, 20),
        cell(long_row, "port-restricted", 10, 20),
        cell(long_row, long_column, 0, 0),
    ];
    let body = format!(
        "<style>{MATRIX_STYLE}</style>{}",
        matrix("TCP · remote go-v0.52", "client NAT", "remote NAT", &cells)
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let page = dir.path().join("matrix.html");
    std::fs::write(&page, punchr_report::render::html::page("matrix", &body))
        .expect("write the page");

    let mut browser = Browser::launch().await;
    browser
        .navigate(&format!("file://{}", page.display()))
        .await;
    let clipped = browser
        .evaluate(
            "[...document.querySelectorAll('table.matrix th, table.matrix td span, table.matrix caption')]\
             .filter(e => { const r = e.getBoundingClientRect(); \
               return e.scrollWidth > e.clientWidth + 1 || r.left < 0 \
                 || r.right > document.documentElement.scrollWidth + 1; })\
             .map(e => e.textContent)",
        )
        .await;
    assert_eq!(clipped, serde_json::json!([]), "labels cut off");
    let shown = browser
        .evaluate("document.querySelector('table.matrix').innerText")
        .await;
    let shown = shown.as_str().expect("the table's text");
    for text in [
        long_row,
        long_column,
        "100 %",
        "50 %",
        "20/20 decided · n = 22",
        "[0–16 %]",
    ] {
        assert!(shown.contains(text), "{text:?} not shown in {shown}");
    }
    let colours = browser
        .evaluate(
            "[...document.querySelectorAll('table.matrix td')].map(td => getComputedStyle(td).backgroundColor)",
        )
        .await;
    let colours: Vec<&str> = colours
        .as_array()
        .expect("colours")
        .iter()
        .map(|c| c.as_str().expect("a colour"))
        .collect();
    assert_eq!(colours.len(), 4, "{colours:?}");
    // 100 % green, 0 % red, 50 % yellow, no decided punch grey: four different colours.
    let mut distinct = colours.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{colours:?}");
    browser.screenshot(&screenshot_path("lab-matrix")).await;
}
