//! What a run owns: its cancellation, its signal handlers, its scratch
//! folder. Nothing here is process-global, so one process can serve many
//! runs (a watch session, a grading batch) one after another or side by side.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, Result};

/// A run's stop button, shared by everything the run started. Holds the
/// signal that pressed it, or [`Cancel::BY_CALLER`].
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicI32>);

impl Cancel {
    /// Cancelled by code rather than by a signal.
    pub const BY_CALLER: i32 = -1;

    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        let _ = self
            .0
            .compare_exchange(0, Self::BY_CALLER, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }

    /// The signal that stopped the run, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        Some(self.0.load(Ordering::SeqCst)).filter(|&s| s > 0)
    }
}

/// SIGINT, SIGTERM and SIGHUP (a closed terminal) press a run's [`Cancel`]
/// instead of killing aula, so the run stops its children and reports what
/// finished. Unregistered when dropped.
pub struct Signals(Vec<signal_hook::SigId>);

impl Signals {
    pub const WATCHED: [i32; 3] = [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ];

    pub fn watch(cancel: &Cancel) -> Signals {
        let ids = Self::WATCHED
            .into_iter()
            .filter_map(|signal| {
                let flag = Arc::clone(&cancel.0);
                // SAFETY: the handler only stores to an atomic it owns.
                unsafe {
                    signal_hook::low_level::register(signal, move || {
                        let _ =
                            flag.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                    })
                }
                .ok()
            })
            .collect();
        Signals(ids)
    }

    /// The exit status of a run stopped by `signal`: SIGHUP is treated as
    /// SIGTERM.
    pub fn exit_status(signal: i32) -> u8 {
        let signal = if signal == signal_hook::consts::SIGHUP {
            signal_hook::consts::SIGTERM
        } else {
            signal
        };
        128 + signal as u8
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// A bound on how long a run may take to stop once a signal came: most
/// waits notice the [`Cancel`] at once, but not every one can (a context
/// being started, the reference's own compiles). `grace` after the signal,
/// the process kills everything it started and exits with the signal's
/// status, saying `message`. Dropped when the run ends by itself.
pub struct Overdue {
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl Overdue {
    pub fn arm(cancel: &Cancel, grace: std::time::Duration, message: String) -> Overdue {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cancel, finished) = (cancel.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let tick = std::time::Duration::from_millis(50);
            while cancel.signal().is_none() {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(tick);
            }
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(tick);
            }
            super::sandbox::kill_descendants(&[]);
            eprintln!("{message}");
            let signal = cancel.signal().unwrap_or(signal_hook::consts::SIGTERM);
            std::process::exit(i32::from(Signals::exit_status(signal)));
        });
        Overdue { done }
    }
}

impl Drop for Overdue {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

const SCRATCH_PREFIX: &str = "aula-run-";
const LOCK: &str = ".lock";

/// A run's scratch folder (capture folders, the children's working folder),
/// removed when dropped. It holds a lock while it lives, so the next aula
/// can tell the folders of runs that died (`kill -9`) and remove them.
pub struct Scratch {
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

/// The temporary folder as aula found it, before a run points `TMPDIR`
/// into its scratch folder: where scratch folders and port leases live,
/// shared by every aula on the machine.
pub fn base_temp_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(std::env::temp_dir)
}

impl Scratch {
    pub fn create() -> Result<Scratch> {
        Self::create_in(base_temp_dir())
    }

    pub fn create_in(parent: &Path) -> Result<Scratch> {
        remove_dead(parent);
        let dir = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(parent)
            .context("creating a scratch folder")?;
        let lock = std::fs::File::create(dir.path().join(LOCK))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
        std::fs::create_dir_all(dir.path().join("work"))?;
        std::fs::create_dir_all(dir.path().join("tmp"))?;
        Ok(Scratch { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where contexts' children work, each in a folder of its own, with
    /// their cells' captures inside it.
    pub fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A temporary folder inside the scratch folder: evcxr's build folders
    /// go there (through `TMPDIR`), so a run killed outright leaves them
    /// where the next run's clean-up finds them.
    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }
}

/// Removes the scratch folders whose run is gone: nobody holds their lock.
fn remove_dead(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_scratch = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(SCRATCH_PREFIX));
        if !is_scratch || !path.is_dir() {
            continue;
        }
        let Ok(lock) = std::fs::File::open(path.join(LOCK)) else {
            continue;
        };
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_keeps_the_first_reason() {
        let c = Cancel::new();
        assert!(!c.is_cancelled());
        let other = c.clone();
        other.cancel();
        assert!(c.is_cancelled());
        assert_eq!(c.signal(), None);
        assert_eq!(Signals::exit_status(signal_hook::consts::SIGHUP), 143);
        assert_eq!(Signals::exit_status(signal_hook::consts::SIGINT), 130);
    }

    #[test]
    fn scratch_folders_of_dead_runs_are_removed_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let live = Scratch::create_in(parent.path()).unwrap();
        // A dead run's folder: its lock file exists, nobody holds it.
        let dead = parent.path().join(format!("{SCRATCH_PREFIX}dead"));
        std::fs::create_dir_all(dead.join("work")).unwrap();
        std::fs::write(dead.join(LOCK), "").unwrap();
        let other = parent.path().join("not-ours");
        std::fs::create_dir_all(&other).unwrap();

        let next = Scratch::create_in(parent.path()).unwrap();
        assert!(!dead.exists());
        assert!(live.path().exists() && next.path().exists() && other.exists());
        let kept = live.path().to_path_buf();
        drop(live);
        assert!(!kept.exists());
    }
}
