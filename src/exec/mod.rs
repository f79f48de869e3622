//! Execution: contexts, ports, watchdogs, the sandbox. All processes and
//! evcxr live below this module; above it, a lesson goes in and
//! observations come out (`crate::observation`), never verdicts.
//!
//! Its parts: [`evcxr`] (contexts and the code aula runs inside them),
//! [`net`] (ports, the kernel's socket tables, namespaces, the relay),
//! [`sandbox`] (limits, confinement, the sweep of what students' code
//! leaves). Here, beside them: the [`Engine`] and its [`Builder`], a run's
//! [`lifecycle`], an exercise's run (`exercise`), Python [`peer`]s, the
//! reference's [`native`] halves, a lesson's [`crates`] and the
//! [`toolchain`].

mod builder;
pub mod crates;
pub mod evcxr;
mod exercise;
pub mod lifecycle;
pub mod native;
pub mod net;
pub mod peer;
pub mod sandbox;
pub mod toolchain;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;

pub use builder::{Builder, StdTypes};
pub use exercise::PANIC_INJECTION_ENV;
pub use lifecycle::{Cancel, Overdue, Scratch, Signals};
pub use plain::PlainRun;

use evcxr::{analysis, capture, kernel, plain, pool, runtime_lib};
use net::{netns, ports};
use sandbox::confine;

use crate::lesson::{Exercise, Lesson};
use crate::observation::{Bounds, ExerciseObservation};
use crate::plan::Replay;

/// How long a cell may take to compile (and replay plain cells) before its
/// run starts the exercise's clock, unless `--compile-timeout` says. Generous:
/// compiling is not the student's fault, but a wedged compiler must not hang
/// the run.
pub const COMPILE_LIMIT: Duration = Duration::from_secs(300);

/// Serialized, the engine's part of cache keys (`toolchain::environment`):
/// durations as whole milliseconds, every field by name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Options {
    /// Most bytes a cell may write to stdout (LESSON-FORMAT.md: 1 MiB).
    pub output_cap: usize,
    /// How long a server may take to end by itself after its last client.
    #[serde(serialize_with = "millis")]
    pub grace: Duration,
    /// Wall-clock limit of a plain cell.
    #[serde(serialize_with = "millis")]
    pub cell_timeout: Duration,
    /// How long the compiler may spend on one cell (`--compile-timeout`).
    #[serde(serialize_with = "millis")]
    pub compile_limit: Duration,
    /// The address the runner provides as `HOST`.
    pub host: String,
    /// Resource limits of the processes that run students' code.
    #[serde(serialize_with = "limits")]
    pub limits: sandbox::Limits,
    /// rustc's `-C opt-level` for cells. `0` by default: lessons' code is
    /// small and waits on the network, and compiling is most of a run.
    pub opt_level: String,
    /// Put a recording relay between clients and server (`--trace`).
    pub trace: bool,
}

/// A duration in a cache key: whole milliseconds, as lessons and flags
/// give them (none is finer).
fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// The limits in a cache key, field by field: `sandbox::Limits` derives
/// no serde of its own. The pattern names every field, so a new one does
/// not compile until it is hashed too.
fn limits<S: serde::Serializer>(l: &sandbox::Limits, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let sandbox::Limits {
        address_space,
        file_size,
        processes,
    } = *l;
    let mut out = s.serialize_struct("Limits", 3)?;
    out.serialize_field("address_space", &address_space)?;
    out.serialize_field("file_size", &file_size)?;
    out.serialize_field("processes", &processes)?;
    out.end()
}

impl Options {
    pub fn bounds(&self) -> Bounds {
        Bounds {
            output_cap: self.output_cap,
            cell_timeout: self.cell_timeout,
            compile_limit: self.compile_limit,
        }
    }
}

/// Runs cells and exercises and says what it saw. It owns warm evcxr
/// contexts and a scratch folder, and serves any number of runs; each run
/// brings its own [`Cancel`].
pub struct Engine {
    options: Options,
    lanes: Vec<Lane>,
    // Its folder lives as long as the engine.
    scratch: Scratch,
    next_capture: AtomicUsize,
    /// Contexts and peers numbered so far: each confined one's sandbox uid.
    numbered: Arc<AtomicUsize>,
    /// How students' code is confined (grading); Python peers get it too.
    confinement: Option<Arc<confine::Confinement>>,
    /// The standard library rust-analyzer loads, when it can still change.
    std_link: Option<analysis::StdLink>,
    /// The lessons' crates, built once (`:dep` lines).
    crates: crates::Store,
}

/// A peer's capture folder, rules file and pids group.
type ConfinedCapture = (
    capture::Capture,
    Option<PathBuf>,
    Option<Arc<confine::Group>>,
);

/// Contexts that share one network namespace. Grading gives each worker a
/// lane of its own, so code of submissions graded at the same time never
/// shares a loopback: one cannot connect to another's ports.
struct Lane {
    pool: pool::Pool,
    netns: Option<Arc<netns::Netns>>,
    /// The socket tables of the namespace the lane's code runs in.
    tables: ports::Tables,
}

impl Engine {
    /// `scratch`: the run's folder for captures and children's work.
    /// `netns`: the namespaces students' code runs in (`--isolate`), a lane
    /// each; none: one lane, not isolated.
    /// `confinement`: Landlock and a pids cgroup for students' code (grading).
    /// `runtime_cache`: where aula's compiled runtime and lessons' crates
    /// are kept between runs; none: they are built in the scratch folder.
    pub fn new(
        options: Options,
        scratch: Scratch,
        netns: Vec<Arc<netns::Netns>>,
        confinement: Option<confine::Confinement>,
        runtime_cache: Option<PathBuf>,
    ) -> Result<Engine> {
        // Room for the sentinel and evcxr's own lines beyond the cell's cap.
        let channel_cap = options.output_cap + 64 * 1024;
        let tmp_root = scratch.tmp();
        let tmp_root = tmp_root.canonicalize().unwrap_or(tmp_root);
        let numbered = Arc::new(AtomicUsize::new(0));
        let crates = crates::Store::new(
            runtime_cache
                .as_ref()
                .map_or_else(|| tmp_root.join("aula-crates"), |c| c.join("crates")),
            &options.opt_level,
        );
        let runtime_lib = runtime_lib::pending(
            runtime_cache.map_or_else(|| tmp_root.join("aula-runtime"), |c| c.join("runtime")),
        );
        let std_libs = match confinement.as_ref().and_then(|c| c.users) {
            Some(_) => Some(open_scratch_to_user(&scratch)?),
            None => None,
        };
        let confinement = confinement.map(Arc::new);
        let namespaces: Vec<Option<Arc<netns::Netns>>> = if netns.is_empty() {
            vec![None]
        } else {
            netns.into_iter().map(Some).collect()
        };
        let lanes = namespaces
            .into_iter()
            .map(|netns| Lane {
                pool: pool::Pool::new(pool::Spec {
                    workdir: scratch.workdir(),
                    tmp_root: tmp_root.clone(),
                    channel_cap,
                    limits: options.limits,
                    compile_limit: options.compile_limit,
                    opt_level: options.opt_level.clone(),
                    netns: netns.clone(),
                    confinement: confinement.clone(),
                    numbered: Arc::clone(&numbered),
                    runtime_lib: Arc::clone(&runtime_lib),
                    std_libs: std_libs.clone(),
                }),
                tables: netns
                    .as_ref()
                    .map_or_else(ports::Tables::here, |n| n.tables()),
                netns,
            })
            .collect();
        Ok(Engine {
            lanes,
            options,
            scratch,
            next_capture: AtomicUsize::new(0),
            numbered,
            confinement,
            std_link: None,
            crates,
        })
    }

    /// Whether the crates of `deps` are built (see [`crates::Store::ready`]).
    pub fn crates_ready(&self, deps: &[crate::lesson::Dep]) -> bool {
        self.crates.ready(deps)
    }

    /// The built crates of `deps` (see [`crates::Store::get`]): fetched and
    /// built the first time a run asks, found in the cache after that.
    pub fn crates(
        &self,
        deps: &[crate::lesson::Dep],
    ) -> Result<Option<Arc<crates::Built>>, crates::Failed> {
        self.crates.get(deps)
    }

    /// Lets [`Engine::need_std_types`] move rust-analyzer from the empty
    /// standard library to the real one.
    pub fn set_std_link(&mut self, link: analysis::StdLink) {
        self.std_link = Some(link);
    }

    /// For lessons with a plain cell that keeps a variable: contexts that
    /// loaded the empty standard library are dropped, and those started
    /// from now on load the real one. Call it between runs, when no context
    /// is taken.
    /// Whether rust-analyzer can be given the standard library's source
    /// (see `analysis::std_source_found`), wherever `RUST_SRC_PATH` points
    /// now.
    pub fn std_source_found(&self) -> bool {
        match &self.std_link {
            Some(link) => link.real_found(),
            None => analysis::std_source_found(),
        }
    }

    pub fn need_std_types(&self) -> Result<()> {
        let Some(link) = &self.std_link else {
            return Ok(());
        };
        if link.make_full()? {
            for lane in &self.lanes {
                // Contexts still starting or resetting read the old link.
                lane.pool.settle();
                lane.pool.clear();
            }
        }
        Ok(())
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Starts contexts in the background until `n` are idle or starting, so
    /// they are warm when needed.
    pub fn warm(&self, n: usize) {
        self.warm_lane(0, n);
    }

    /// Like [`Engine::warm`], in one lane.
    pub fn warm_lane(&self, lane: usize, n: usize) {
        self.lane(lane).pool.warm(n);
    }

    /// How many lanes (network namespaces) the engine has.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    fn lane(&self, lane: usize) -> &Lane {
        &self.lanes[lane % self.lanes.len()]
    }

    /// How many evcxr contexts this engine has started.
    pub fn contexts_started(&self) -> usize {
        self.lanes.iter().map(|l| l.pool.started()).sum()
    }

    /// A folder for the reference's compiled halves (grading).
    pub fn natives_dir(&self) -> PathBuf {
        self.scratch.path().join("natives")
    }

    /// A new capture folder for a compiled half, outside every context's
    /// working folder.
    fn native_capture_dir(&self, name: &str) -> PathBuf {
        let n = self.next_capture.fetch_add(1, Ordering::SeqCst) + 1;
        self.scratch.path().join(format!("{n:04}-{name}"))
    }

    /// For a process that runs students' code outside a context (a Python
    /// peer): its capture folder, given to a sandbox user of its own; the
    /// rules file it confines itself with, which lets it write that folder
    /// only; and the pids group it joins. Only the capture when the engine
    /// does not confine.
    fn confined_capture(&self, name: &str) -> Result<ConfinedCapture> {
        let dir = self.native_capture_dir(name);
        let Some(c) = &self.confinement else {
            return Ok((capture::Capture::create(dir)?, None, None));
        };
        // Numbered with the contexts, so no context shares its uid.
        let n = self.numbered.fetch_add(1, Ordering::SeqCst) + 1;
        let user = c.users.map(|u| u.nth(n));
        let capture = capture::Capture::create_for(dir, user)?;
        let rules = capture.dir().with_extension("rules");
        confine::write_rules(
            &rules,
            &confine::Rules {
                read: c.system.clone(),
                write: vec![capture.dir().to_path_buf()],
                user,
            },
        )?;
        let group = c.group(&format!("peer-{n}-{name}"))?;
        Ok((capture, Some(rules), Some(group)))
    }

    /// A capture folder at `dir`, given to the user `kernel`'s child runs as.
    fn new_capture(
        &self,
        kernel: &kernel::Kernel,
        name: &str,
    ) -> std::io::Result<capture::Capture> {
        capture::Capture::create_for(self.capture_dir(kernel, name), kernel.user())
    }

    /// A new capture folder in `kernel`'s working folder, the one place a
    /// confined child may write.
    fn capture_dir(&self, kernel: &kernel::Kernel, name: &str) -> PathBuf {
        let n = self.next_capture.fetch_add(1, Ordering::SeqCst) + 1;
        kernel.workdir().join(format!("{n:04}-{name}"))
    }

    /// Whether students' code runs in a private network namespace.
    pub fn isolated(&self) -> bool {
        self.lanes[0].netns.is_some()
    }

    /// Runs a lesson's plain cells in order, in one context.
    pub fn plain(&self, lesson: &Lesson, cancel: &Cancel) -> Vec<PlainRun> {
        plain::run(self, lesson, cancel)
    }

    /// Runs an exercise against the plain cells that `replay` says ran
    /// through. `Ok(None)`: cancelled. `Err`: the runner itself failed (no
    /// context, no free port).
    pub fn exercise(
        &self,
        lesson: &Lesson,
        ex: &Exercise,
        replay: &[Replay],
        cancel: &Cancel,
    ) -> Result<Option<ExerciseObservation>> {
        exercise::run(
            self,
            0,
            lesson,
            ex,
            replay,
            &native::Natives::none(),
            cancel,
        )
    }

    /// Like [`Engine::exercise`], in one lane, with the cells `natives` has
    /// run from their compiled programs.
    pub fn exercise_in(
        &self,
        lane: usize,
        lesson: &Lesson,
        ex: &Exercise,
        (replay, natives): (&[Replay], &native::Natives),
        cancel: &Cancel,
    ) -> Result<Option<ExerciseObservation>> {
        exercise::run(self, lane, lesson, ex, replay, natives, cancel)
    }

    /// Kills whatever a finished run left behind (a process that escaped its
    /// cell's process group), sparing the warm contexts and aula's own group
    /// (the namespace holder).
    pub fn sweep(&self) {
        let mut keep = Vec::new();
        for lane in &self.lanes {
            lane.pool.settle();
            keep.extend(lane.pool.idle_groups());
        }
        keep.push(rustix::process::getpgrp().as_raw_nonzero().get());
        sandbox::kill_descendants(&keep);
    }
}

/// Lets the unprivileged user students' code runs as pass through the
/// scratch folder to what it is given (its own working folder, evcxr's
/// build folders, a copy of the standard library), without listing it; the
/// reference's compiled halves stay the grader's alone. Returns where the
/// standard library's copy is.
fn open_scratch_to_user(scratch: &Scratch) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let traverse = std::fs::Permissions::from_mode(0o711);
    std::fs::set_permissions(scratch.path(), traverse.clone())?;
    std::fs::set_permissions(scratch.workdir(), traverse.clone())?;
    std::fs::set_permissions(scratch.tmp(), traverse)?;
    let natives = scratch.path().join("natives");
    std::fs::DirBuilder::new().mode(0o700).create(&natives)?;
    confine::copy_std_library(&scratch.path().join("std"))
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Contexts kill their process groups when dropped; the sweep catches
        // whatever escaped a group.
        for lane in &self.lanes {
            lane.pool.settle();
            lane.pool.clear();
        }
        sandbox::kill_descendants(&[]);
    }
}
