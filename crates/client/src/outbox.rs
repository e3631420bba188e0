//! A durable outbox for results the server has not confirmed yet.
//!
//! Every result is written here before it is sent, one file per result (the encoded
//! TrackHolePunch request), and removed only when the server confirmed it. A client that is
//! killed, or a server that is down, therefore loses nothing: the next delivery round, also after
//! a restart, sends what is left. Each result carries a random `report_id`, so a result the
//! server stored but whose confirmation was lost is not stored twice.
//!
//! Files are written to a temporary name, synced, then renamed, so a crash never leaves a half
//! file under a real name. An unreadable file is moved to `corrupt/` and reported, never deleted.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use punchr_proto::TrackHolePunchRequest;
use punchr_types::log_target::CLIENT;

/// Outbox failures.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The directory or a file could not be used.
    #[error("outbox {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold an encoded result (cut short, or changed by something else).
    #[error("outbox {path}: not an encoded result: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the decoder found.
        #[source]
        source: prost::DecodeError,
    },
}

/// One undelivered result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    path: PathBuf,
}

impl Entry {
    /// The file holding the result.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A directory of undelivered results.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

const SUFFIX: &str = ".pb";

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Outbox {
    /// Opens (creating it with mode 0700 if needed) the outbox directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Outbox, OutboxError> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(io_error(&dir))?;
        Ok(Outbox { dir })
    }

    /// Stores a result durably, without its API key (delivery adds the key it has then, so a
    /// key never rests on disk twice and a changed key applies to old results); returns its
    /// entry.
    pub fn push(&self, request: &TrackHolePunchRequest) -> Result<Entry, OutboxError> {
        let request = TrackHolePunchRequest {
            api_key: String::new(),
            ..request.clone()
        };
        let name = format!("{:020}-{:016x}", unix_nanos_now(), rand::random::<u64>());
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(format!("{name}{SUFFIX}"));
        let mut file = fs::File::create(&temporary).map_err(io_error(&temporary))?;
        file.write_all(&request.encode_to_vec())
            .map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        fs::rename(&temporary, &path).map_err(io_error(&path))?;
        sync_dir(&self.dir)?;
        Ok(Entry { path })
    }

    /// Undelivered results, oldest first.
    pub fn pending(&self) -> Result<Vec<Entry>, OutboxError> {
        let mut entries = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let path = item.map_err(io_error(&self.dir))?.path();
            let is_entry = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.'));
            if is_entry && path.is_file() {
                entries.push(Entry { path });
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Reads an entry and leaves it where it is.
    pub fn read(&self, entry: &Entry) -> Result<TrackHolePunchRequest, OutboxError> {
        let bytes = fs::read(&entry.path).map_err(io_error(&entry.path))?;
        TrackHolePunchRequest::decode(bytes.as_slice()).map_err(|source| OutboxError::Corrupt {
            path: entry.path.clone(),
            source,
        })
    }

    /// Reads an entry. An unreadable one is moved to `corrupt/` and `None` is returned.
    pub fn load(&self, entry: &Entry) -> Result<Option<TrackHolePunchRequest>, OutboxError> {
        match self.read(entry) {
            Ok(request) => Ok(Some(request)),
            Err(error @ OutboxError::Corrupt { .. }) => {
                tracing::error!(target: CLIENT, event = "outbox_entry_corrupt", %error, "unreadable outbox entry moved to corrupt/");
                self.set_aside(entry, "corrupt")?;
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Moves an entry the server refused for good to `rejected/`, where a person can look at it.
    pub fn reject(&self, entry: &Entry) -> Result<(), OutboxError> {
        self.set_aside(entry, "rejected")
    }

    fn set_aside(&self, entry: &Entry, folder: &str) -> Result<(), OutboxError> {
        let dir = self.dir.join(folder);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let target = dir.join(entry.path.file_name().unwrap_or_default());
        fs::rename(&entry.path, &target).map_err(io_error(&target))?;
        sync_dir(&self.dir)
    }

    /// Forgets a delivered entry.
    pub fn remove(&self, entry: &Entry) -> Result<(), OutboxError> {
        match fs::remove_file(&entry.path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&entry.path)(e)),
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(())
}

fn unix_nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u8) -> TrackHolePunchRequest {
        TrackHolePunchRequest {
            client_id: vec![n],
            report_id: Some(vec![n; 16]),
            ..Default::default()
        }
    }

    #[test]
    fn entries_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().join("outbox")).unwrap();
        outbox.push(&request(1)).unwrap();
        outbox.push(&request(2)).unwrap();
        let reopened = Outbox::open(dir.path().join("outbox")).unwrap();
        let pending = reopened.pending().unwrap();
        let loaded: Vec<_> = pending
            .iter()
            .map(|e| reopened.load(e).unwrap().unwrap())
            .collect();
        assert_eq!(loaded, vec![request(1), request(2)]);
        reopened.remove(&pending[0]).unwrap();
        reopened.remove(&pending[0]).unwrap();
        assert_eq!(reopened.pending().unwrap().len(), 1);
    }

    #[test]
    fn unreadable_entries_are_set_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("00000000000000000001-0000000000000000.pb"),
            b"\xff\xff\xff",
        )
        .unwrap();
        std::fs::write(dir.path().join(".half-written.tmp"), b"x").unwrap();
        let pending = outbox.pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(outbox.load(&pending[0]).unwrap(), None);
        assert!(outbox.pending().unwrap().is_empty());
        assert!(dir
            .path()
            .join("corrupt/00000000000000000001-0000000000000000.pb")
            .exists());
    }
}
