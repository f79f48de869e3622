//! One evcxr evaluation context and the child process that runs its code.
//!
//! All evcxr calls go through here, so the rest of aula never sees evcxr's
//! quirks: channels that must be drained while `eval` runs, a child that has
//! to be killed by process group, compile errors in the generated crate's
//! coordinates.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use evcxr::{Error as EvcxrError, EvalContext, EvalContextOutputs};

use super::runtime;
use super::source::SourceMap;
use crate::exec::crates::Built;
use crate::exec::net::netns::Netns;
use crate::exec::sandbox::Limits;
use crate::exec::sandbox::confine;
use crate::observation::{Diagnostic, Ending};

/// Lines received on one of evcxr's channels, bounded so a flood cannot grow
/// the host's memory.
#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    bytes: usize,
    overflowed: bool,
}

#[derive(Clone)]
pub struct LineBuffer(Arc<Mutex<Lines>>);

impl LineBuffer {
    fn new() -> Self {
        LineBuffer(Arc::new(Mutex::new(Lines::default())))
    }

    fn push(&self, line: String, cap: usize) {
        let mut l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if l.bytes + line.len() + 1 > cap {
            l.overflowed = true;
            return;
        }
        l.bytes += line.len() + 1;
        l.lines.push(line);
    }

    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Lines::default();
    }

    pub fn overflowed(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).overflowed
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .clone()
    }

    pub fn contains(&self, line: &str) -> bool {
        let l = self.0.lock().unwrap_or_else(|e| e.into_inner());
        l.lines.iter().any(|l| l == line)
    }
}

/// Kills the context's current child and every process it started. Cheap to
/// clone and usable from a watchdog thread while `eval` blocks.
#[derive(Clone)]
pub struct Killer {
    child: Arc<Mutex<std::process::Child>>,
    /// What the context's compiler has in its environment: [`BUILD_ENV`]
    /// set to the context's working folder.
    build: Arc<str>,
    /// The context's pids group, when confined: it holds whatever left the
    /// child's process group.
    group: Option<Arc<confine::Group>>,
}

impl Killer {
    /// The child's pid, which is also its process group's id.
    pub fn pid(&self) -> i32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id() as i32
    }

    /// Kills the child and everything it started, at once, without waiting
    /// for them to be gone: cells stopped together die together.
    pub fn kill(&self) {
        let pid = self.pid();
        // The child leads its own process group (see `Kernel::start`), so the
        // group id is its pid; killing the group takes grandchildren with it.
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        // A process that made a session or group of its own is still in
        // the pids group.
        if let Some(group) = &self.group {
            group.signal_all();
        }
    }

    /// The processes the child runs as now: its pids group's, or the child
    /// and its descendants where there is no group.
    pub fn processes(&self) -> Vec<i32> {
        crate::exec::net::idle::processes_of(self.pid(), self.group.as_deref())
    }

    /// Like [`Killer::kill`], and returns once nothing the context started
    /// is left: before the context serves anything else.
    pub fn kill_all(&self) {
        self.kill();
        if let Some(group) = &self.group {
            group.kill_all(self.pid());
        }
    }

    /// Stops the context's compiler (cargo and rustc), if it is running:
    /// evcxr then returns from `eval` with an error.
    pub fn kill_compiler(&self) {
        crate::exec::sandbox::kill_descendants_with_env(BUILD_ENV, &self.build);
    }
}

/// In the environment of a context's cargo and rustc: which context they
/// build for, so they can be found and stopped.
const BUILD_ENV: &str = "AULA_BUILD_FOR";

/// How an evaluation ended, short of the cell's own output. evcxr's words
/// are read here and nowhere else.
#[derive(Debug)]
pub enum EvalError {
    /// rustc rejected the code; positions are already the cells'.
    Compile(Vec<Diagnostic>),
    /// evcxr cannot keep a variable between cells: one that holds a borrow
    /// or a closure. The cell runs fine as a block.
    CannotPersist,
    /// The child process died (killed by us, or crashed): its exit status.
    Died(String),
    /// Anything else evcxr reported.
    Other(String),
}

impl EvalError {
    pub fn into_ending(self) -> Ending {
        match self {
            EvalError::Compile(d) => Ending::DoesNotCompile(d),
            EvalError::Died(status) => Ending::Died(status),
            EvalError::CannotPersist => Ending::RunnerFailed(
                "evcxr cannot keep this cell's variables between cells".to_owned(),
            ),
            EvalError::Other(m) => Ending::RunnerFailed(m),
        }
    }
}

/// evcxr's refusal to keep a variable between cells: one that holds a
/// borrow ("can't be persisted") or a closure ("cannot be persisted").
/// Its words are the only signal: evcxr 0.22's `Error` has no variant for
/// it (`Message` or a compile error carry it), and evcxr stays unmodified.
fn says_cannot_persist(message: &str) -> bool {
    message.contains("be persisted")
}

/// The exit status in evcxr's message about a dead child, for the report
/// only: that the child died is the error's variant, which is what the
/// verdict follows; evcxr keeps the status itself (it waits for its own
/// child), so its words are where the report can find it.
fn died_status(message: &str) -> String {
    let status = message.lines().last().unwrap_or("").trim();
    status
        .strip_prefix("Subprocess terminated with status: ")
        .unwrap_or(status)
        .to_owned()
}

/// How one context's child is confined (see `confine`).
pub struct ChildConfinement {
    /// Where the child's rules are written: outside its working folder.
    pub rules: std::path::PathBuf,
    /// Under which evcxr makes its build folders.
    pub tmp_root: std::path::PathBuf,
    /// Read-only paths of the system and toolchain.
    pub system: Vec<std::path::PathBuf>,
    /// The context's pids group, when there is one.
    pub group: Option<Arc<confine::Group>>,
    /// The limits of the compiler that builds the context's cells.
    pub compiler: crate::exec::sandbox::CompilerLimits,
    /// Whom the child becomes (see `confine::Rules::user`), and where it
    /// then finds the standard library its cells link to: the toolchain's
    /// own folder may be closed to that user (rustup's under `/root`).
    pub user: Option<((u32, u32), std::path::PathBuf)>,
}

pub struct Kernel {
    ctx: EvalContext,
    /// The child's working folder, where its cells' captures go: the only
    /// folder a confined child may write to.
    workdir: std::path::PathBuf,
    killer: Killer,
    pub stdout: LineBuffer,
    pub stderr: LineBuffer,
    /// Whether the runtime is among the context's items.
    runtime_loaded: bool,
    /// What puts it there: `runtime::SHIM` where cells link the compiled
    /// runtime, else its source, `runtime::MODULE`.
    runtime_items: &'static str,
    /// Whether anything ran since the last reset.
    used: bool,
    /// Whether the child is confined: then its working folder is emptied
    /// at each reset, so nothing one student's code leaves there reaches
    /// the next.
    confined: bool,
    /// The sandbox user the child became (grading as root): its captures
    /// are handed to it.
    user: Option<(u32, u32)>,
    /// evcxr's build folder, once known (confined contexts): scrubbed at
    /// each reset.
    build: Option<std::path::PathBuf>,
    /// The flags every cell is compiled with (`CARGO_ENCODED_RUSTFLAGS`,
    /// split): evcxr's, and the runtime library's where there is one.
    base_flags: Vec<String>,
    /// The crates the next cells link (see [`Kernel::link_crates`]).
    crates: Option<Arc<Built>>,
    /// The cell this context compiled last, if any (see [`super::pool::Pool::take_for`]).
    pub(super) last_cell: Option<String>,
}

impl Kernel {
    /// The command that runs aula as evcxr's child: in `workdir`, in a
    /// process group of its own, under `limits`, in the namespace and
    /// confinement given.
    fn child_command(
        exe: &Path,
        workdir: &Path,
        limits: Limits,
        netns: Option<&Netns>,
        confinement: Option<&ChildConfinement>,
    ) -> Result<Command> {
        let mut command = Command::new(exe);
        if confinement.is_some() {
            // The grader's environment (a CI runner's tokens among it) is
            // not students' code's to read.
            crate::exec::sandbox::clean_environment(&mut command);
        }
        command.current_dir(workdir).process_group(0).env(
            crate::exec::sandbox::PARENT_ENV,
            std::process::id().to_string(),
        );
        limits.apply_to(&mut command);
        if let Some(c) = confinement {
            if let Some((_, libs)) = &c.user {
                command.env("LD_LIBRARY_PATH", libs);
            }
            command
                .env(crate::exec::sandbox::pipes::ENV, "1")
                .env(confine::RULES_ENV, &c.rules)
                .env(confine::BOOT_ENV, confine::boot(&c.system, &c.tmp_root))
                .env("TMPDIR", workdir)
                .env("HOME", workdir);
            if let Some(group) = c.group.clone() {
                // SAFETY: `join_in_child` is async-signal-safe.
                unsafe {
                    command.pre_exec(move || confine::join_in_child(&group));
                }
            }
        }
        if let Some(ns) = netns {
            ns.enter_in(&mut command)?;
        }
        Ok(command)
    }

    /// Sets the context's build: its folder, the runtime library's flags
    /// where there is one, and aula as the compiler's wrapper when
    /// confined. Returns the runtime's items for cells and the flags every
    /// cell is compiled with.
    fn configure_build(
        ctx: &mut EvalContext,
        exe: &Path,
        build: &str,
        confinement: Option<&ChildConfinement>,
        runtime_lib: Option<&Path>,
    ) -> Result<(&'static str, Vec<String>)> {
        let mut runtime_items = runtime::MODULE;
        let mut base_flags = vec!["-Cprefer-dynamic".to_owned()];
        // Build settings live in the context's configuration, which `clear`
        // keeps; an evaluation of nothing commits them.
        let mut state = ctx.state();
        state.set_build_env(BUILD_ENV, build);
        if let Some(lib) = runtime_lib {
            let flags = super::runtime_lib::encoded_rustflags(lib);
            state.set_build_env("CARGO_ENCODED_RUSTFLAGS", &flags);
            base_flags = flags.split('\x1f').map(str::to_owned).collect();
            runtime_items = runtime::SHIM;
        }
        if let Some(c) = confinement {
            // evcxr sets no wrapper of its own here (static linking allowed,
            // no cache): cargo runs every rustc through aula, limited.
            state.set_build_env("RUSTC_WRAPPER", &exe.to_string_lossy());
            state.set_build_env(crate::exec::sandbox::RUSTC_LIMITS_ENV, &c.compiler.encode());
        }
        ctx.eval_with_state("", state)
            .map_err(|e| anyhow::anyhow!("setting the context's build: {e}"))?;
        Ok((runtime_items, base_flags))
    }

    /// Drains evcxr's channels on threads of their own, as `eval` needs,
    /// into buffers that keep at most `channel_cap` bytes each.
    fn drain_channels(outputs: EvalContextOutputs, channel_cap: usize) -> (LineBuffer, LineBuffer) {
        let stdout = LineBuffer::new();
        let stderr = LineBuffer::new();
        for (rx, buf) in [
            (outputs.stdout, stdout.clone()),
            (outputs.stderr, stderr.clone()),
        ] {
            std::thread::spawn(move || {
                for line in rx.iter() {
                    buf.push(line, channel_cap);
                }
            });
        }
        (stdout, stderr)
    }

    /// The first child ran evcxr's warm-up under the boot rules; its build
    /// folder is known now, so the rules can name it, and every child from
    /// the next on (after the reset here) reads them.
    fn confine_after_warm_up(
        &mut self,
        c: ChildConfinement,
        runtime_lib: Option<&Path>,
    ) -> Result<()> {
        // The child is the pipes' warden's child (see `sandbox::pipes`).
        let build = (self.killer.processes().into_iter())
            .find_map(|pid| confine::build_folder_of(pid, &c.tmp_root))
            .context("finding the context's build folder")?;
        let mut read = c.system;
        if let Some(((uid, gid), libs)) = &c.user {
            confine::open_to_user(&build, &self.workdir, (*uid, *gid))?;
            read.push(libs.clone());
        }
        read.push(build.clone());
        self.build = Some(build);
        // The cells' crates load the runtime library from its folder.
        read.extend(runtime_lib.and_then(Path::parent).map(Path::to_path_buf));
        confine::write_rules(
            &c.rules,
            &confine::Rules {
                read,
                write: vec![self.workdir.clone()],
                user: c.user.as_ref().map(|(user, _)| *user),
            },
        )?;
        self.used = true;
        self.reset()
    }

    /// Starts a context (about 3 s: evcxr builds an empty crate). The child
    /// runs in `workdir`, in a process group of its own; at most `channel_cap`
    /// bytes of what arrives on evcxr's channels are kept.
    pub fn start(
        workdir: &Path,
        channel_cap: usize,
        limits: Limits,
        opt_level: &str,
        netns: Option<&Netns>,
        confinement: Option<ChildConfinement>,
        runtime_lib: &super::runtime_lib::Pending,
    ) -> Result<Kernel> {
        let exe = std::env::current_exe().context("finding aula's own executable")?;
        std::fs::create_dir_all(workdir)
            .with_context(|| format!("creating {}", workdir.display()))?;
        let command = Self::child_command(&exe, workdir, limits, netns, confinement.as_ref())?;
        let (mut ctx, outputs) = EvalContext::with_subprocess_command(command)
            .map_err(|e| anyhow::anyhow!("starting an evcxr context: {e}"))?;
        ctx.set_opt_level(opt_level)
            .map_err(|e| anyhow::anyhow!("setting the optimisation level: {e}"))?;
        // Built meanwhile (see `runtime_lib::prefetch`).
        let runtime_lib = std::sync::LazyLock::force(runtime_lib).as_deref();
        let build = workdir.to_string_lossy();
        let (runtime_items, base_flags) =
            Self::configure_build(&mut ctx, &exe, &build, confinement.as_ref(), runtime_lib)?;
        let (stdout, stderr) = Self::drain_channels(outputs, channel_cap);
        let killer = Killer {
            child: ctx.process_handle(),
            build: Arc::from(build.as_ref()),
            group: confinement.as_ref().and_then(|c| c.group.clone()),
        };
        let mut kernel = Kernel {
            ctx,
            workdir: workdir.to_path_buf(),
            killer,
            stdout,
            stderr,
            runtime_loaded: false,
            runtime_items,
            used: false,
            confined: confinement.is_some(),
            user: confinement
                .as_ref()
                .and_then(|c| c.user.as_ref().map(|(u, _)| *u)),
            build: None,
            base_flags,
            crates: None,
            last_cell: None,
        };
        if let Some(c) = confinement {
            kernel.confine_after_warm_up(c, runtime_lib)?;
        }
        Ok(kernel)
    }

    /// The child's working folder.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The sandbox user (uid, gid) the child runs as, when it dropped root.
    pub fn user(&self) -> Option<(u32, u32)> {
        self.user
    }

    /// Whether anything ran since the last reset.
    pub fn used(&self) -> bool {
        self.used
    }

    pub fn killer(&self) -> Killer {
        self.killer.clone()
    }

    /// Forgets every item and variable and restarts the child, keeping the
    /// compiled build folder: the next cell sees a fresh context.
    pub fn reset(&mut self) -> Result<()> {
        if self.used {
            self.killer.kill_all();
            if self.confined
                && let Ok(entries) = std::fs::read_dir(&self.workdir)
            {
                for e in entries.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() && !p.is_symlink() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
            if let Some(build) = &self.build {
                confine::scrub_build_folder(build);
            }
            self.ctx
                .clear()
                .map_err(|e| anyhow::anyhow!("resetting an evcxr context: {e}"))?;
            self.runtime_loaded = false;
            self.used = false;
        }
        Ok(())
    }

    /// Names the cell this context compiles next, `None` for one that is
    /// not the same on every run (see [`super::pool::Pool::take_for`]).
    pub fn compiles(&mut self, cell: Option<&str>) {
        self.last_cell = cell.map(str::to_owned);
    }

    /// The crates the next evaluations may use (a lesson's `:dep` lines),
    /// or none. Their flags go into the build settings with the next eval.
    pub fn link_crates(&mut self, crates: Option<Arc<Built>>) {
        self.crates = crates;
    }

    /// Evaluates the segments as one piece of code, with aula's runtime module
    /// in front the first time. Compile errors come back in lesson lines.
    pub fn eval(&mut self, mut map: SourceMap) -> Result<(), EvalError> {
        if !self.runtime_loaded {
            map.prepend(self.runtime_items, None);
        }
        self.used = true;
        self.stdout.clear();
        self.stderr.clear();
        // Given with every eval: a failed one commits nothing of its state,
        // so flags set once could silently be lost.
        let mut flags = self.base_flags.clone();
        flags.extend(self.crates.iter().flat_map(|c| c.rustc_flags()));
        let mut state = self.ctx.state();
        state.set_build_env("CARGO_ENCODED_RUSTFLAGS", &flags.join("\x1f"));
        match self.ctx.eval_with_state(map.code(), state) {
            Ok(_) => {
                self.runtime_loaded = true;
                Ok(())
            }
            Err(EvcxrError::CompilationErrors(errors)) => {
                if errors.iter().any(|e| says_cannot_persist(&e.message())) {
                    return Err(EvalError::CannotPersist);
                }
                Err(EvalError::Compile(map.diagnostics(&errors)))
            }
            // Nothing of a failed eval is committed, the runtime module
            // included, so it goes in front again next time.
            Err(EvcxrError::SubprocessTerminated(msg)) => Err(EvalError::Died(died_status(&msg))),
            Err(e) if says_cannot_persist(&e.to_string()) => Err(EvalError::CannotPersist),
            Err(e) => Err(EvalError::Other(e.to_string())),
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // evcxr's drop waits for the child to exit; one stuck in a student's
        // loop would block us forever.
        self.killer.kill();
    }
}
