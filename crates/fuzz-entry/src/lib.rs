//! The entry functions of Punchr's fuzz targets, one per input surface that takes bytes from the
//! network or from files. The cargo-fuzz package in `fuzz/` calls them with libFuzzer's inputs;
//! `tests/corpus.rs` replays the committed corpora (`fuzz/corpus/<target>/`) through them on
//! stable, so a crash the fuzzer once found stays fixed.
//!
//! Every entry calls the functions the binaries call. It returns `Ok` when the input is
//! accepted and `Err` with the message a user or client author would see when it is refused,
//! and panics when a property the project relies on does not hold: a refusal without a message,
//! a refused file that was changed, an accepted value the store could not read back.
//!
//! [`seeds`] builds the starting corpus from real, valid inputs; the `fuzz_seeds` example writes
//! it to disk.

mod seeds;

use std::ffi::OsStr;
use std::fmt::Display;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::str::FromStr;

use clap::Parser;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use punchr_server::validate::{self, Limits, Rpc};
use punchr_store::AddressFacts;

pub use seeds::{seeds, Seed};

/// The fuzz targets, as named in `fuzz/Cargo.toml` and `fuzz/corpus/`.
pub const TARGETS: [&str; 6] = [
    "grpc_request",
    "multiaddr",
    "peer_id",
    "key_file",
    "outbox_file",
    "config",
];

/// Runs `data` through the entry function of `target`.
///
/// # Panics
/// On an unknown target, and wherever the entry function panics (see the crate docs).
pub fn run(target: &str, data: &[u8]) -> Result<(), String> {
    match target {
        "grpc_request" => grpc_request(data),
        "multiaddr" => multiaddr(data),
        "peer_id" => peer_id(data),
        "key_file" => key_file(data),
        "outbox_file" => outbox_file(data),
        "config" => config(data),
        other => panic!("unknown fuzz target {other:?}; known: {TARGETS:?}"),
    }
}

/// A refusal's message; every refusal must say what is wrong.
fn refused(error: impl Display) -> String {
    let message = error.to_string();
    assert!(!message.trim().is_empty(), "a refusal without a message");
    message
}

/// A gRPC request body as the server receives it, tagged with its RPC in the first byte
/// ([`Rpc::split_tagged`]): decoded like the gRPC codec does, validated like the service does.
pub fn grpc_request(data: &[u8]) -> Result<(), String> {
    let (rpc, body) = Rpc::split_tagged(data);
    validate::request(
        rpc,
        body,
        punchr_store::now_unix_nanos(),
        &Limits::default(),
    )
    .map_err(refused)
}

/// A multiaddress: binary, from a request, checked like the server checks it; or, when the
/// input starts with `/` (never the first byte of a binary multiaddress), text, as flags give
/// it and the store reads its rows, parsed and then held to the same check in binary form.
/// Then the facts the store derives from an accepted address.
pub fn multiaddr(data: &[u8]) -> Result<(), String> {
    let limits = Limits::default();
    let binary = if data.starts_with(b"/") {
        let text = std::str::from_utf8(data).map_err(refused)?;
        Multiaddr::from_str(text).map_err(refused)?.to_vec()
    } else {
        data.to_vec()
    };
    let address = validate::multiaddr("multi_address", &binary, &limits).map_err(refused)?;
    let facts = AddressFacts::of(&address);
    assert_eq!(
        facts.ip_version().is_some(),
        facts.ip.is_some(),
        "facts of {address}"
    );
    assert!(!facts.is_public || facts.ip.is_some(), "facts of {address}");
    Ok(())
}

/// A peer ID from a request, checked like the server checks it. The store keeps the base58
/// form and the server reads it back when it hands a peer out, so it must read back.
pub fn peer_id(data: &[u8]) -> Result<(), String> {
    let text = validate::peer_id("peer_id", data).map_err(refused)?;
    let reread = PeerId::from_str(&text)
        .unwrap_or_else(|e| panic!("accepted peer ID {text} does not read back: {e}"));
    assert_eq!(reread.to_base58(), text, "peer ID text changed on reading");
    Ok(())
}

/// A scratch directory for one input's files; `TMPDIR` on a tmpfs keeps fsync cheap.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch directory")
}

/// A key file with this content, opened the way the client and honeypot open theirs
/// ([`punchr_keyfile::load_or_create`]). A refused file is left exactly as it was; an accepted
/// one only grows, and what was read is what the file holds.
pub fn key_file(data: &[u8]) -> Result<(), String> {
    let dir = scratch_dir();
    let path = dir.path().join("client.keys");
    std::fs::write(&path, data).expect("write the key file");
    let loaded = punchr_keyfile::load_or_create(&path, 1);
    let after = std::fs::read(&path).expect("read the key file back");
    let keys = match loaded {
        Ok(keys) => keys,
        Err(error) => {
            assert_eq!(after, data, "a refused key file was changed");
            return Err(refused(error));
        }
    };
    assert!(!keys.is_empty(), "load_or_create(1) returned no key");
    assert!(
        after.starts_with(data),
        "an accepted key file was rewritten"
    );
    let reread = punchr_keyfile::load(&path).expect("the file just written reads back");
    assert_eq!(
        reread.iter().map(|k| k.public()).collect::<Vec<_>>(),
        keys.iter().map(|k| k.public()).collect::<Vec<_>>(),
        "the keys read back differ from the keys returned"
    );
    Ok(())
}

/// An outbox entry with this content, read the way the client's delivery reads it. A refused
/// entry is moved, unchanged, to `corrupt/`, and is no longer pending.
pub fn outbox_file(data: &[u8]) -> Result<(), String> {
    use prost::Message;
    use punchr_client::outbox::Outbox;
    let dir = scratch_dir();
    let outbox = Outbox::open(dir.path()).expect("open the outbox");
    let name = "00000000000000000001-0000000000000000.pb";
    std::fs::write(dir.path().join(name), data).expect("write the entry");
    let pending = outbox.pending().expect("list the outbox");
    assert_eq!(pending.len(), 1, "the entry is pending");
    let read = outbox.read(&pending[0]);
    let loaded = outbox.load(&pending[0]).expect("load the entry");
    match read {
        Ok(request) => {
            // Compared encoded: a NaN round trip time is not equal to itself.
            assert_eq!(
                loaded.map(|loaded| loaded.encode_to_vec()),
                Some(request.encode_to_vec()),
                "read and load disagree"
            );
            assert_eq!(
                outbox.pending().expect("list").len(),
                1,
                "a good entry stays"
            );
            Ok(())
        }
        Err(error) => {
            assert_eq!(loaded, None, "load returned a refused entry");
            assert!(
                outbox.pending().expect("list").is_empty(),
                "a refused entry stays pending"
            );
            let kept = std::fs::read(dir.path().join("corrupt").join(name))
                .expect("a refused entry is kept in corrupt/");
            assert_eq!(kept, data, "a refused entry was changed");
            Err(refused(error))
        }
    }
}

/// A command line of one of the binaries (first byte: server, client or honeypot; then the
/// arguments, NUL separated, any bytes): parsed with the binary's clap parser, then the checks
/// and derived settings the binary computes before it starts.
pub fn config(data: &[u8]) -> Result<(), String> {
    let (selector, rest) = data.split_first().map_or((0, &[][..]), |(s, r)| (*s, r));
    let args = rest
        .split(|b| *b == 0)
        .filter(|arg| !rest.is_empty() || !arg.is_empty())
        .map(OsStr::from_bytes);
    match selector % 3 {
        0 => server_config(args),
        1 => client_config(args),
        _ => honeypot_config(args),
    }
}

fn server_config<'a>(args: impl Iterator<Item = &'a OsStr>) -> Result<(), String> {
    use punchr_server::config::Cli;
    let cli = Cli::try_parse_from(std::iter::once(OsStr::new("punchr-server")).chain(args))
        .map_err(refused)?;
    let _ = cli.server.selection_rules();
    let _ = cli.server.filter_draw().pick(0.5);
    let _ = cli.server.rate_quota();
    Ok(())
}

fn client_config<'a>(args: impl Iterator<Item = &'a OsStr>) -> Result<(), String> {
    use punchr_client::config::ClientConfig;
    let config =
        ClientConfig::try_parse_from(std::iter::once(OsStr::new("punchr-client")).chain(args))
            .map_err(refused)?;
    let _ = config.server_url();
    let _ = config.key_file_path();
    let _ = config.outbox_path();
    Ok(())
}

fn honeypot_config<'a>(args: impl Iterator<Item = &'a OsStr>) -> Result<(), String> {
    use punchr_honeypot::config::Cli;
    let cli = Cli::try_parse_from(std::iter::once(OsStr::new("punchr-honeypot")).chain(args))
        .map_err(refused)?;
    cli.honeypot.validate().map_err(refused)
}

/// Whether `path` is a corpus file (not a hidden or editor file).
pub fn is_corpus_file(path: &Path) -> bool {
    path.is_file()
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.'))
}
