//! Starting an [`Engine`]: the process environment students' code and
//! evcxr inherit (TMPDIR, RUST_SRC_PATH), the subreaper, the network
//! namespaces, and the engine itself, in the one order that makes changing
//! the environment sound.

use std::sync::Arc;

use anyhow::Result;

use super::evcxr::analysis::{self, StdLink};
use super::net::netns::Netns;
use super::sandbox::confine::Confinement;
use super::{Engine, Options, Scratch, sandbox};
use crate::cache::Cache;

/// What rust-analyzer loads of the standard library (see `exec::evcxr::analysis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdTypes {
    /// All of it, or nothing, for the whole run.
    Fixed(bool),
    /// Nothing or all of it now, all of it once a lesson needs it.
    Switchable(bool),
}

/// An engine to be started: its options, its lanes' network namespaces,
/// how students' code is confined, and what rust-analyzer sees.
pub struct Builder {
    options: Options,
    namespaces: usize,
    confinement: Option<Confinement>,
    std_types: StdTypes,
}

impl Engine {
    /// An engine with these options: one lane, not isolated, not confined,
    /// the whole standard library for rust-analyzer.
    pub fn builder(options: Options) -> Builder {
        Builder {
            options,
            namespaces: 0,
            confinement: None,
            std_types: StdTypes::Fixed(true),
        }
    }
}

impl Builder {
    /// `n` private networks, a lane each (0: not isolated).
    pub fn namespaces(mut self, n: usize) -> Builder {
        self.namespaces = n;
        self
    }

    /// Confined for grading: then a namespace that cannot be made stops
    /// the start instead of a warning.
    pub fn confinement(mut self, confinement: Option<Confinement>) -> Builder {
        self.confinement = confinement;
        self
    }

    /// Whether some plain cell keeps a variable, so evcxr's rust-analyzer
    /// needs the standard library.
    pub fn std_types(mut self, std_types: StdTypes) -> Builder {
        self.std_types = std_types;
        self
    }

    /// Makes the run's scratch folder, points TMPDIR (and RUST_SRC_PATH)
    /// into it, and starts the engine.
    ///
    /// Call it before the process starts any thread: it changes the
    /// environment, which another thread could be reading.
    pub fn start(self) -> Result<Engine> {
        let scratch = Scratch::create()?;
        // SAFETY: `set_var` is sound while no other thread can read the
        // environment. Every command starts its engine first, from the
        // main thread, before anything it runs spawns a thread (signal
        // handlers are not threads; the overdue watch, the progress bar,
        // the pools' warm-up and the reporters all start after this
        // returns). evcxr makes its build folders under TMPDIR; inside
        // the scratch folder, a run killed outright leaves them where the
        // next run's clean-up removes them.
        unsafe { std::env::set_var("TMPDIR", scratch.tmp()) };
        let mut std_link = None;
        match self.std_types {
            StdTypes::Fixed(true) => {}
            StdTypes::Fixed(false) => {
                let empty = analysis::empty_std(scratch.path())?;
                // SAFETY: as above, no other thread exists yet.
                unsafe { std::env::set_var("RUST_SRC_PATH", empty) };
            }
            StdTypes::Switchable(now) => {
                let link = StdLink::create(scratch.path(), now)?;
                // SAFETY: as above, no other thread exists yet.
                unsafe { std::env::set_var("RUST_SRC_PATH", link.path()) };
                std_link = Some(link);
            }
        }
        sandbox::become_subreaper();
        let netns = namespaces(self.namespaces, self.confinement.is_some())?;
        // Grading builds its own: nothing a student's earlier, unconfined
        // `aula run` could have written is linked into the graded code.
        let runtime_cache = match self.confinement {
            Some(_) => None,
            None => Cache::default_dir(),
        };
        let mut engine = Engine::new(
            self.options,
            scratch,
            netns,
            self.confinement,
            runtime_cache,
        )?;
        if let Some(link) = std_link {
            engine.set_std_link(link);
        }
        Ok(engine)
    }
}

/// `n` network namespaces; when one cannot be made, none (with a warning),
/// or for grading (`fail_closed`) an error.
fn namespaces(n: usize, fail_closed: bool) -> Result<Vec<Arc<Netns>>> {
    let mut netns = Vec::new();
    for _ in 0..n {
        match Netns::create() {
            Ok(ns) => netns.push(Arc::new(ns)),
            // Grading fails closed: no network of its own, no batch.
            Err(e) if fail_closed => {
                anyhow::bail!(
                    "a network namespace for students' code cannot be made: {e:#}; --unsandboxed grades anyway, trusting the code"
                )
            }
            Err(e) => {
                eprintln!("warning: --isolate: {e:#}; running without network isolation");
                netns.clear();
                break;
            }
        }
    }
    Ok(netns)
}
