//! A refused request changes nothing stored. Every body of the `grpc_request` fuzz corpus
//! (`fuzz/corpus/grpc_request/`, an RPC tag byte and the raw message) that the server's checks
//! refuse is sent as raw bytes to a real server, on both engines, so the server's own decoder
//! reads it: once as it is (its API key is unknown; the server runs with `--allow-anonymous`,
//! so a Register gets as far as validation), and once with a valid API key appended (in
//! protobuf the last record of a field wins), so every RPC reaches validation. Refusals must be
//! INVALID_ARGUMENT or UNAUTHENTICATED, with the validator's message, and every table must keep
//! its row count. A body that does not decode at all is refused with INTERNAL, which is what
//! tonic answers for every undecodable message; it must change nothing either.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::wire::{encode, raw_channel, raw_unary_on, string};
use crate::common::*;
use punchr_server::validate::{self, Limits, RequestError, Rpc};
use punchr_store::{now_unix_nanos, Engine, Store};
use punchr_testutil::{on_both_engines, TestDb};
use sqlx::Row;
use tonic::Code;

on_both_engines!(
    refused_corpus_requests_change_nothing_stored,
    nul_characters_are_refused_before_the_store,
);

/// The grpc_request corpus, in file name order.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/grpc_request");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).expect("read a corpus file");
            (path.display().to_string(), data)
        })
        .collect()
}

/// Row counts of every table of the database, migrations bookkeeping included.
async fn row_counts(store: &Store) -> BTreeMap<String, i64> {
    let tables = match store.engine() {
        Engine::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Engine::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
    };
    let names: Vec<String> = sqlx::query(tables)
        .fetch_all(store.pool())
        .await
        .expect("list the tables")
        .iter()
        .map(|row| row.try_get(0).expect("a table name"))
        .collect();
    assert!(names.len() > 10, "tables: {names:?}");
    let mut counts = BTreeMap::new();
    for name in names {
        let rows = count(store, &name).await;
        counts.insert(name, rows);
    }
    counts
}

async fn refused_corpus_requests_change_nothing_stored(db: TestDb) {
    let (server, mut client) = serve(&db, &["--allow-anonymous", "--rate-limit", "0"]).await;
    // Rows a careless refusal could add to or change: a key with a host, a remote to hand out.
    let (key, _host) = new_client(server.store(), &mut client, "alice").await;
    seed_remote(server.store()).await;
    let before = row_counts(server.store()).await;
    let channel = raw_channel(server.grpc_addr()).await;
    let (mut invalid, mut undecodable) = (0, 0);
    for (file, data) in corpus() {
        let (rpc, body) = Rpc::split_tagged(&data);
        match validate::request(rpc, body, now_unix_nanos(), &Limits::default()) {
            Ok(()) => continue,
            Err(RequestError::Decode { .. }) => {
                undecodable += 1;
                let status = raw_unary_on(channel.clone(), rpc.path(), body.to_vec())
                    .await
                    .expect_err(&file);
                assert_eq!(status.code(), Code::Internal, "{file}: {status:?}");
                assert!(status.message().contains("decode"), "{file}: {status:?}");
            }
            Err(RequestError::Invalid(field)) => {
                invalid += 1;
                let status = raw_unary_on(channel.clone(), rpc.path(), body.to_vec())
                    .await
                    .expect_err(&file);
                assert!(
                    matches!(status.code(), Code::InvalidArgument | Code::Unauthenticated),
                    "{file}: {status:?}"
                );
                let mut with_key = body.to_vec();
                with_key.extend(encode(&[string(rpc.api_key_field(), &key)]));
                let status = raw_unary_on(channel.clone(), rpc.path(), with_key)
                    .await
                    .expect_err(&file);
                assert_eq!(status.code(), Code::InvalidArgument, "{file}: {status:?}");
                assert_eq!(status.message(), field.to_string(), "{file}");
            }
        }
    }
    assert!(
        invalid >= 20 && undecodable >= 5,
        "the corpus exercises too little: {invalid} invalid, {undecodable} undecodable"
    );
    eprintln!("refused {invalid} invalid and {undecodable} undecodable corpus requests");
    assert_eq!(row_counts(server.store()).await, before);
    server.shutdown().await.expect("stop the server");
}

async fn nul_characters_are_refused_before_the_store(db: TestDb) {
    // PostgreSQL cannot store NUL in text: the write used to fail as INTERNAL "storage error".
    let (server, mut client) = serve(&db, &[]).await;
    let (key, host) = new_client(server.store(), &mut client, "alice").await;
    let remote = seed_remote(server.store()).await;
    let before = row_counts(server.store()).await;
    let mut request = register_request(&key, &host);
    request.agent_version = "kubo/0.25.0\0".into();
    assert_status(
        client.register(request).await,
        Code::InvalidArgument,
        "agent_version: contains a NUL character",
    );
    let mut request = track_request(&key, &host, &remote.peer);
    request.hole_punch_attempts[0].error = Some("dial\0failed".into());
    assert_status(
        client.track_hole_punch(request).await,
        Code::InvalidArgument,
        "hole_punch_attempts[0].error: contains a NUL character",
    );
    assert_eq!(row_counts(server.store()).await, before);
    server.shutdown().await.expect("stop the server");
}
