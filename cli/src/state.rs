//! `tail`'s saved cursors: one small JSON file per server URL and room in the state directory,
//! `{"url":...,"room":...,"epoch":...,"seq":...}`, replaced atomically (written to a temporary
//! file, then renamed over the old one) after each printed event, so a `tail` stopped at any
//! point resumes after the last event it printed.
//!
//! It must never decide where to resume from; it only remembers.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use chorus_sdk::wire::{Cursor, RoomName};
use fnv::FnvHasher;
use serde::{Deserialize, Serialize};

use crate::connect::Failure;

/// The file holding one room's cursor on one server.
#[derive(Debug)]
pub(crate) struct CursorFile {
    path: PathBuf,
    url: String,
    room: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    url: String,
    room: String,
    epoch: u64,
    seq: u64,
}

impl CursorFile {
    /// The cursor file of `room` on the server at `url`, in `dir/cursors/`.
    pub(crate) fn new(dir: &Path, url: &str, room: &RoomName) -> CursorFile {
        // Readable names for operators, and a hash of the exact pair so that two pairs that
        // read alike once sanitized (`doc:1`, `doc_1`) never share a file.
        let readable: String = format!("{url}_{room}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(80)
            .collect();
        let hash = fnv1a(format!("{url}\n{room}").as_bytes());
        CursorFile {
            path: dir
                .join("cursors")
                .join(format!("{readable}-{hash:016x}.json")),
            url: url.to_owned(),
            room: room.as_str().to_owned(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved cursor, if there is one. A file that cannot be read is an error (resuming
    /// from nowhere would silently skip or repeat events).
    pub(crate) fn load(&self) -> Result<Option<Cursor>, Failure> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(Failure::io(format!(
                    "cannot read the saved cursor {}: {err}",
                    self.path.display()
                )));
            }
        };
        let saved: Saved = serde_json::from_str(&text).map_err(|err| {
            Failure::io(format!(
                "the saved cursor {} is damaged ({err}); delete it, or use --no-resume or --from-start",
                self.path.display()
            ))
        })?;
        Ok(Some(Cursor {
            epoch: saved.epoch,
            seq: saved.seq,
        }))
    }

    /// Saves `cursor` (atomically: a reader or a crash sees the old one or the new one).
    pub(crate) fn save(&self, cursor: Cursor) -> Result<(), Failure> {
        let saved = Saved {
            url: self.url.clone(),
            room: self.room.clone(),
            epoch: cursor.epoch,
            seq: cursor.seq,
        };
        let text = serde_json::to_string(&saved).expect("plain data serializes");
        let failed = |err: std::io::Error| {
            Failure::io(format!(
                "cannot save the cursor to {}: {err}",
                self.path.display()
            ))
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, text).map_err(failed)?;
        std::fs::rename(&temporary, &self.path).map_err(failed)
    }
}

/// FNV-1a, 64 bits: a hash whose value never changes between builds (file names depend on it).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = FnvHasher::default();
    hash.write(bytes);
    hash.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cursor_is_read_back_and_pairs_that_look_alike_do_not_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let room = RoomName::parse("doc:1").unwrap();
        let file = CursorFile::new(dir.path(), "http://h:1", &room);
        assert_eq!(file.load().unwrap(), None);
        file.save(Cursor { epoch: 7, seq: 42 }).unwrap();
        let again = CursorFile::new(dir.path(), "http://h:1", &room);
        assert_eq!(again.load().unwrap(), Some(Cursor { epoch: 7, seq: 42 }));
        let lookalike =
            CursorFile::new(dir.path(), "http://h:1", &RoomName::parse("doc_1").unwrap());
        assert_ne!(lookalike.path(), file.path());
        let other_server = CursorFile::new(dir.path(), "http://h:2", &room);
        assert_eq!(other_server.load().unwrap(), None);
    }

    #[test]
    fn a_damaged_cursor_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = CursorFile::new(dir.path(), "http://h:1", &RoomName::parse("r").unwrap());
        std::fs::create_dir_all(file.path().parent().unwrap()).unwrap();
        std::fs::write(file.path(), "{not json").unwrap();
        let err = file.load().unwrap_err();
        assert!(format!("{err:?}").contains("damaged"), "{err:?}");
    }

    #[test]
    fn the_file_name_hash_is_stable() {
        // FNV-1a's published test vector: file names must not change between versions.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
