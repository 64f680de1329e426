//! Where the native driver keeps the outbox and the remembered transport between runs.

use std::collections::HashMap;
use std::path::PathBuf;

/// A small key-value store for client state.
pub trait Storage: Send + 'static {
    /// The value saved under `key`, if any.
    fn load(&self, key: &str) -> Option<String>;
    /// Saves `value` under `key` (an empty value may be stored as "nothing").
    fn save(&mut self, key: &str, value: &str);
}

/// Keeps nothing across runs (tests, throwaway tools).
#[derive(Debug, Default)]
pub struct MemoryStorage(HashMap<String, String>);

impl Storage for MemoryStorage {
    fn load(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn save(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_owned(), value.to_owned());
    }
}

/// One file per key in a directory, written atomically (write to a temporary file, rename).
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
}

impl FileStorage {
    /// Storage in `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileStorage> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileStorage { dir })
    }

    fn path(&self, key: &str) -> PathBuf {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(safe)
    }
}

impl Storage for FileStorage {
    fn load(&self, key: &str) -> Option<String> {
        std::fs::read_to_string(self.path(key))
            .ok()
            .filter(|value| !value.is_empty())
    }

    fn save(&mut self, key: &str, value: &str) {
        let path = self.path(key);
        let temporary = path.with_extension("tmp");
        // A failed save keeps the previous value; the next change saves again.
        if std::fs::write(&temporary, value).is_ok() {
            let _ = std::fs::rename(&temporary, &path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_storage_survives_a_new_instance() {
        let dir = std::env::temp_dir().join(format!("chorus-storage-test-{}", std::process::id()));
        let mut storage = FileStorage::new(&dir).unwrap();
        assert_eq!(storage.load("chorus.outbox"), None);
        storage.save("chorus.outbox", r#"{"entries":[]}"#);
        let again = FileStorage::new(&dir).unwrap();
        assert_eq!(
            again.load("chorus.outbox").as_deref(),
            Some(r#"{"entries":[]}"#)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
