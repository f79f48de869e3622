//! The result cache: an unchanged cell or exercise is not run again.
//!
//! Keys hash everything that decides a verdict (code, expected output, the
//! plain cells an exercise sees, limits, the toolchain and aula's version).
//! Entries are JSON files written whole or not at all ([`crate::fs`]),
//! so two `aula` processes at once, or a crash mid-write, never leave a torn
//! entry; an unreadable entry is a miss. The cache is best-effort: any I/O
//! failure is a miss, never an error. Entries are written in the background
//! (flushing to disk takes milliseconds a student would wait for), and are
//! all written by the time the cache is dropped or read again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Bumped when what is stored, or what decides it, changes meaning.
const FORMAT: &str = "aula-cache-1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Builds a key from named fields; lengths are hashed too, so no two
/// different field lists collide by concatenation.
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(kind: &str) -> Self {
        let mut b = KeyBuilder(Sha256::new());
        b = b.field("format", FORMAT);
        b = b.field("aula", env!("CARGO_PKG_VERSION"));
        b.field("kind", kind)
    }

    pub fn field(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        for part in [name.as_bytes(), value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    pub fn finish(self) -> Key {
        Key(hex::encode(self.0.finalize()))
    }
}

#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    /// The entries being written (see [`Cache::put`]).
    writing: Mutex<Vec<JoinHandle<()>>>,
}

impl Cache {
    /// `AULA_CACHE_DIR`, else the user's cache folder (`~/.cache/aula`).
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("AULA_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("aula")))
    }

    pub fn at(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: dir.into(),
            writing: Mutex::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &Key) -> PathBuf {
        let k = key.as_str();
        self.dir.join("v1").join(&k[..2]).join(format!("{k}.json"))
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.flush();
        self.path(key).is_file()
    }

    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Option<T> {
        self.flush();
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Stores `value` under `key`, in the background: the caller goes on
    /// (a verdict reaches the screen) while the entry is flushed to disk.
    pub fn put<T: Serialize>(&self, key: &Key, value: &T) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        // Taken by the thread, or here when no thread can be had.
        let job = std::sync::Arc::new(Mutex::new(Some((self.path(key), bytes))));
        let write = |job: &Mutex<Option<(PathBuf, Vec<u8>)>>| {
            let taken = job.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some((path, bytes)) = taken {
                let _ = write_entry(&path, &bytes);
            }
        };
        let theirs = std::sync::Arc::clone(&job);
        match std::thread::Builder::new().spawn(move || write(&theirs)) {
            Ok(handle) => self
                .writing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle),
            Err(_) => write(&job),
        }
    }

    /// Waits until every entry put so far is written.
    pub fn flush(&self) {
        let writing = std::mem::take(&mut *self.writing.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in writing {
            let _ = handle.join();
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.flush();
    }
}

fn write_entry(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("entries live in a folder");
    std::fs::create_dir_all(dir)?;
    crate::fs::write_atomically(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_field_and_on_field_boundaries() {
        let k = |fields: &[(&str, &str)]| {
            fields
                .iter()
                .fold(KeyBuilder::new("t"), |b, (n, v)| b.field(n, v))
                .finish()
        };
        let base = k(&[("code", "ab"), ("out", "c")]);
        assert_eq!(base, k(&[("code", "ab"), ("out", "c")]));
        assert_ne!(base, k(&[("code", "a"), ("out", "bc")]));
        assert_ne!(base, k(&[("code", "ab"), ("out", "d")]));
        assert_ne!(base, k(&[("code", "ab")]));
        assert_ne!(KeyBuilder::new("a").finish(), KeyBuilder::new("b").finish());
        assert_eq!(base.as_str().len(), 64);
    }

    #[test]
    fn entries_round_trip_and_torn_ones_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let key = KeyBuilder::new("t").field("x", "1").finish();
        assert_eq!(cache.get::<Vec<u32>>(&key), None);
        assert!(!cache.contains(&key));
        cache.put(&key, &vec![1u32, 2, 3]);
        // Read back at once: a read waits for the writes before it.
        assert!(cache.contains(&key));
        assert_eq!(cache.get::<Vec<u32>>(&key), Some(vec![1, 2, 3]));
        // What a crash mid-write could leave if entries were written in place.
        std::fs::write(cache.path(&key), b"[1, 2").unwrap();
        assert_eq!(cache.get::<Vec<u32>>(&key), None);
        // No temporary files are left beside the entries.
        let names: Vec<_> = std::fs::read_dir(cache.path(&key).parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_put_is_on_disk_once_flushed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyBuilder::new("t").field("x", "2").finish();
        let cache = Cache::at(dir.path());
        cache.put(&key, &7u32);
        cache.flush();
        assert_eq!(std::fs::read(cache.path(&key)).unwrap(), b"7");
        let other = KeyBuilder::new("t").field("x", "3").finish();
        let path = cache.path(&other);
        cache.put(&other, &8u32);
        drop(cache);
        assert_eq!(std::fs::read(path).unwrap(), b"8");
    }

    #[test]
    fn concurrent_writers_leave_a_whole_entry() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyBuilder::new("t").finish();
        let threads: Vec<_> = (0..8u32)
            .map(|i| {
                let cache = Cache::at(dir.path());
                let key = key.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        cache.put(&key, &vec![i; 1000]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Each thread's cache was dropped: its writes were all done then.
        let got: Vec<u32> = Cache::at(dir.path()).get(&key).unwrap();
        assert_eq!(got.len(), 1000);
        assert!(got.iter().all(|&v| v == got[0]));
    }
}
