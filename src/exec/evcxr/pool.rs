//! Warm evcxr contexts. Starting one costs seconds, so they are started in
//! parallel ahead of need and reused (after a reset) across cells, exercises
//! and lessons of one run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::Result;

use super::kernel::{ChildConfinement, Kernel};
use crate::exec::net::netns::Netns;
use crate::exec::sandbox::Limits;
use crate::exec::sandbox::confine::Confinement;

#[derive(Default)]
struct State {
    idle: Vec<Kernel>,
    starting: usize,
    /// Contexts started since the pool was made.
    started: usize,
    /// The first start failure, reported to whoever waits next.
    failed: Option<String>,
    /// The last cells of the contexts being reset now (see [`Pool::take_for`]).
    resetting: Vec<String>,
}

impl State {
    /// The idle context to give for `cell` (see [`choose`]); `None` when
    /// there is none to give now.
    fn pick(&mut self, cell: Option<&str>) -> Option<Kernel> {
        let last: Vec<Option<&str>> = self.idle.iter().map(|k| k.last_cell.as_deref()).collect();
        let at = choose(&last, &self.resetting, cell)?;
        Some(self.idle.swap_remove(at))
    }
}

/// Which of the idle contexts (`idle`: the cell each compiled last) to give
/// for `cell`: the one that compiled it last, else one that compiled
/// nothing yet, else any. `None` when none is idle, or when the one that
/// compiled it is being reset (`resetting`): it is worth the short wait.
fn choose(idle: &[Option<&str>], resetting: &[String], cell: Option<&str>) -> Option<usize> {
    let Some(cell) = cell else {
        return idle.len().checked_sub(1);
    };
    if let Some(at) = idle.iter().position(|&c| c == Some(cell)) {
        return Some(at);
    }
    if resetting.iter().any(|c| c == cell) {
        return None;
    }
    idle.iter()
        .position(Option::is_none)
        .or(idle.len().checked_sub(1))
}

/// Everything a context is started with.
pub struct Spec {
    /// Each context works in a folder of its own below this one.
    pub workdir: PathBuf,
    /// Where evcxr makes its build folders (TMPDIR).
    pub tmp_root: PathBuf,
    pub channel_cap: usize,
    pub limits: Limits,
    /// How long the compiler may spend on a cell (`--compile-timeout`).
    pub compile_limit: std::time::Duration,
    pub opt_level: String,
    pub netns: Option<Arc<Netns>>,
    pub confinement: Option<Arc<Confinement>>,
    /// Contexts numbered so far (across lanes), for their folders' names.
    pub numbered: Arc<AtomicUsize>,
    /// Where a child that becomes the unprivileged user finds the standard
    /// library (see `confine::copy_std_library`).
    pub std_libs: Option<PathBuf>,
    /// aula's runtime as a library, when it could be built.
    pub runtime_lib: super::runtime_lib::Pending,
}

impl Spec {
    fn start(&self) -> Result<Kernel> {
        let n = self.numbered.fetch_add(1, Ordering::SeqCst) + 1;
        let workdir = self.workdir.join(format!("ctx-{n}"));
        let confinement = match &self.confinement {
            Some(c) => Some(ChildConfinement {
                rules: self.workdir.join(format!("ctx-{n}.rules.json")),
                tmp_root: self.tmp_root.clone(),
                system: c.system.clone(),
                group: Some(c.group(&format!("ctx-{n}"))?),
                compiler: crate::exec::sandbox::CompilerLimits::for_compile_limit(
                    self.compile_limit,
                ),
                user: c.users.map(|u| u.nth(n)).zip(self.std_libs.clone()),
            }),
            None => None,
        };
        super::runtime_lib::prefetch(&self.runtime_lib);
        Kernel::start(
            &workdir,
            self.channel_cap,
            self.limits,
            &self.opt_level,
            self.netns.as_deref(),
            confinement,
            &self.runtime_lib,
        )
    }
}

pub struct Pool {
    state: Arc<(Mutex<State>, Condvar)>,
    spec: Arc<Spec>,
}

impl Pool {
    pub fn new(spec: Spec) -> Pool {
        Pool {
            state: Arc::default(),
            spec: Arc::new(spec),
        }
    }

    /// Starts contexts in the background until `n` are idle or starting.
    pub fn warm(&self, n: usize) {
        let (lock, _) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        while st.idle.len() + st.starting < n {
            st.starting += 1;
            st.started += 1;
            let state = Arc::clone(&self.state);
            let spec = Arc::clone(&self.spec);
            std::thread::spawn(move || {
                let started = spec.start();
                let (lock, cvar) = &*state;
                let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                st.starting -= 1;
                match started {
                    Ok(k) => st.idle.push(k),
                    Err(e) => {
                        st.failed.get_or_insert(format!("{e:#}"));
                    }
                }
                cvar.notify_all();
            });
        }
    }

    /// A context with nothing in it.
    pub fn take(&self) -> Result<Kernel> {
        self.take_for(None)
    }

    /// A context with nothing in it, for the cell named `cell` (the same
    /// name each run): the one that compiled that cell last when it is
    /// idle or being reset. Its build folder keeps the compiler's
    /// incremental state of that cell's previous code, so a student's
    /// small edit compiles in about two thirds of the time a context that
    /// compiled another cell takes (measured on an echo server: 0.16 s
    /// against 0.23–0.29 s). Confined contexts scrub that state at each
    /// reset: there, this changes nothing.
    pub fn take_for(&self, cell: Option<&str>) -> Result<Kernel> {
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(mut k) = st.pick(cell) {
                drop(st);
                k.reset()?;
                k.compiles(cell);
                return Ok(k);
            }
            if let Some(e) = st.failed.take() {
                anyhow::bail!(e);
            }
            if st.starting == 0 {
                st.started += 1;
                // Only a reset can leave `resetting` non-empty, and it is
                // counted in `starting`.
                debug_assert!(st.resetting.is_empty());
                drop(st);
                return self.spec.start();
            }
            // Bounded by the start of the contexts in flight, each of which
            // ends with a push or a failure, and notifies.
            st = cvar.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// How many contexts the pool has started.
    pub fn started(&self) -> usize {
        self.state
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .started
    }

    /// The process groups of the idle contexts' children.
    pub fn idle_groups(&self) -> Vec<i32> {
        let st = self.state.0.lock().unwrap_or_else(|e| e.into_inner());
        st.idle.iter().map(|k| k.killer().pid()).collect()
    }

    /// Drops every idle context, killing its child.
    pub fn clear(&self) {
        let idle = std::mem::take(&mut self.state.0.lock().unwrap_or_else(|e| e.into_inner()).idle);
        drop(idle);
    }

    /// Takes a context back. One that ran something is reset (its child
    /// restarted) in the background, off the path of whoever takes it next:
    /// in the interactive course, between two saves.
    pub fn give_back(&self, mut kernel: Kernel) {
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !kernel.used() {
            st.idle.push(kernel);
            cvar.notify_all();
            return;
        }
        // Counted as starting, so `take` waits for it rather than starting
        // another, and `settle` waits for it to end.
        st.starting += 1;
        let cell = kernel.last_cell.clone();
        st.resetting.extend(cell.clone());
        drop(st);
        let state = Arc::clone(&self.state);
        std::thread::spawn(move || {
            let reset = kernel.reset();
            let (lock, cvar) = &*state;
            let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
            st.starting -= 1;
            if let Some(at) = cell.and_then(|c| st.resetting.iter().position(|r| *r == c)) {
                st.resetting.swap_remove(at);
            }
            if reset.is_ok() {
                st.idle.push(kernel);
            }
            cvar.notify_all();
        });
    }

    /// Waits until no context is starting or being reset, so a sweep of
    /// processes cannot catch one halfway. Bounded: each ends by itself.
    pub fn settle(&self) {
        let (lock, cvar) = &*self.state;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        while st.starting > 0 {
            st = cvar.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn a_cell_gets_the_context_that_compiled_it_last() {
        let resetting = ["c".to_owned()];
        let idle = [Some("a"), None, Some("b")];
        assert_eq!(choose(&idle, &[], Some("b")), Some(2));
        assert_eq!(choose(&idle, &[], Some("a")), Some(0));
        // A cell no context compiled: a fresh one, so no other cell's
        // context is taken from it.
        assert_eq!(choose(&idle, &[], Some("d")), Some(1));
        assert_eq!(choose(&[Some("a"), Some("b")], &[], Some("d")), Some(1));
        // Its own is being reset: waited for.
        assert_eq!(choose(&idle, &resetting, Some("c")), None);
        // No cell named: the last one given back.
        assert_eq!(choose(&idle, &resetting, None), Some(2));
        assert_eq!(choose(&[], &[], Some("a")), None);
    }
}
