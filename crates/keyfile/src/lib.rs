//! Identity key files of the Punchr client and honeypot: who each host is on the network, kept
//! across restarts.
//!
//! The format is the original punchr's (`punchr-original.md` §6.1), so key files move between
//! the Go tools and ours: one key per line, the libp2p protobuf encoding of a private key
//! (`Keypair::to_protobuf_encoding`, Go's `crypto.MarshalPrivateKey`) in standard padded
//! base64; blank lines are ignored. The file is created with mode 0600 and only ever appended
//! to, so a restart keeps every host's identity.
//!
//! [`load_or_create`] is what a binary calls at start; [`from_seed`] derives deterministic
//! identities for tests and the lab.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libp2p_identity::Keypair;
use sha2::{Digest, Sha256};

/// What can go wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read, created or appended to.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line holds no valid key.
    #[error(
        "key file {path} line {line}: {reason}; fix or delete that line (other lines are kept)"
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A key could not be encoded (not an Ed25519, secp256k1 or ECDSA key).
    #[error("cannot encode key: {0}")]
    Encode(String),
}

/// One key as a line of the file (without the newline).
pub fn encode(keypair: &Keypair) -> Result<String, KeyFileError> {
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|e| KeyFileError::Encode(e.to_string()))?;
    Ok(STANDARD.encode(bytes))
}

/// Parses one line of a key file.
pub fn decode(line: &str) -> Result<Keypair, String> {
    let bytes = STANDARD
        .decode(line.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Keypair::from_protobuf_encoding(&bytes).map_err(|e| format!("not a libp2p private key: {e}"))
}

/// Reads every key of a file, in order.
pub fn load(path: &Path) -> Result<Vec<Keypair>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            decode(line).map_err(|reason| KeyFileError::BadKey {
                path: path.to_owned(),
                line: index + 1,
                reason,
            })
        })
        .collect()
}

/// Returns at least `count` keys from the file at `path`, creating the file (mode 0600) or
/// appending new Ed25519 keys as needed. Existing keys are never changed.
pub fn load_or_create(path: &Path, count: usize) -> Result<Vec<Keypair>, KeyFileError> {
    let mut keys = if path.exists() {
        load(path)?
    } else {
        Vec::new()
    };
    if keys.len() >= count {
        return Ok(keys);
    }
    let io_error = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = open_for_append(path).map_err(io_error)?;
    let mut appended = String::new();
    while keys.len() < count {
        let keypair = Keypair::generate_ed25519();
        appended.push_str(&encode(&keypair)?);
        appended.push('\n');
        keys.push(keypair);
    }
    file.write_all(appended.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    Ok(keys)
}

fn open_for_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // Make sure a file that ends without a newline does not glue two keys together.
    if file.metadata()?.len() > 0 {
        let text = std::fs::read(path)?;
        if text.last() != Some(&b'\n') {
            (&file).write_all(b"\n")?;
        }
    }
    Ok(file)
}

/// A deterministic Ed25519 identity: the secret is SHA-256 over the seed and the host index,
/// so distinct seeds cover the whole 32-byte key space (the original Rust client's `u8` seed
/// gave only 256 identities).
pub fn from_seed(seed: &[u8], index: u32) -> Keypair {
    let mut hasher = Sha256::new();
    hasher.update(b"punchr identity seed v1\0");
    hasher.update(seed);
    hasher.update(index.to_be_bytes());
    let secret: [u8; 32] = hasher.finalize().into();
    Keypair::ed25519_from_bytes(secret).expect("any 32 bytes are an Ed25519 secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_lines() {
        let keypair = Keypair::generate_ed25519();
        let line = encode(&keypair).unwrap();
        assert_eq!(decode(&line).unwrap().public(), keypair.public());
    }

    #[test]
    fn a_go_generated_ed25519_key_decodes() {
        // crypto.MarshalPrivateKey of an Ed25519 key: type 1 (Ed25519), 64 bytes of key data.
        let mut bytes = vec![0x08, 0x01, 0x12, 0x40];
        let keypair = libp2p_identity::ed25519::Keypair::generate();
        bytes.extend_from_slice(&keypair.to_bytes());
        let decoded = decode(&STANDARD.encode(bytes)).unwrap();
        assert_eq!(decoded.public(), Keypair::from(keypair).public());
    }

    #[test]
    fn files_grow_but_never_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.keys");
        let first = load_or_create(&path, 2).unwrap();
        let again = load_or_create(&path, 3).unwrap();
        assert_eq!(again.len(), 3);
        for (a, b) in first.iter().zip(&again) {
            assert_eq!(a.public(), b.public());
        }
        assert_eq!(load_or_create(&path, 1).unwrap().len(), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.keys");
        let good = encode(&Keypair::generate_ed25519()).unwrap();
        std::fs::write(&path, format!("{good}\n\nnot-a-key!\n")).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("not base64"), "{err}");
        // Nothing is overwritten by a failed load.
        assert!(load_or_create(&path, 5).is_err());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("not-a-key!\n"));
    }

    #[test]
    fn a_missing_final_newline_is_repaired_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.keys");
        let good = encode(&Keypair::generate_ed25519()).unwrap();
        std::fs::write(&path, &good).unwrap();
        assert_eq!(load_or_create(&path, 2).unwrap().len(), 2);
        assert_eq!(load(&path).unwrap().len(), 2);
    }

    #[test]
    fn a_seed_gives_the_peer_id_other_implementations_check() {
        // The js-libp2p lab remote (crates/lab/impls/js/test) and the Go remotes derive their
        // identity from the same seed; this pins the value they compare against.
        let id = from_seed(b"punchr-lab/remote-js", 0).public().to_peer_id();
        assert_eq!(
            id.to_string(),
            "12D3KooWJMLXRQVknjpndMFKEVpcdvvp5W7sYrp2KvLBU4PX1CBF"
        );
    }

    #[test]
    fn seeds_are_deterministic_and_distinct() {
        assert_eq!(from_seed(b"lab", 0).public(), from_seed(b"lab", 0).public());
        assert_ne!(from_seed(b"lab", 0).public(), from_seed(b"lab", 1).public());
        assert_ne!(
            from_seed(b"lab", 0).public(),
            from_seed(b"lab2", 0).public()
        );
    }

    #[test]
    fn from_seed_matches_the_go_remote() {
        // The lab's go-libp2p remote (crates/lab/impls/go/identity_test.go) pins the same
        // vector, so {peer_id:NAME} names Go peers too.
        assert_eq!(
            from_seed(b"punchr-lab/relay", 0)
                .public()
                .to_peer_id()
                .to_string(),
            "12D3KooWSoZBmN7H5rGPDFzkdQAWy8XpYNVkTTpnwNssiFTGNXPR"
        );
    }
}
