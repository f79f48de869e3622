//! Confinement of the processes that run students' code when grading: an
//! unprivileged user, files through Landlock, system calls through a
//! seccomp filter (`seccomp`), processes through a pids cgroup.
//! docs/sandbox.md says what each layer stops and which test shows it.
//!
//! A context's child is aula itself, run again by evcxr, and it confines
//! itself at the top of `main`, while it still has one thread (Landlock binds
//! the calling thread and what it starts later). What it may touch is read
//! from a rules file that the host writes once it knows the context's build
//! folder; evcxr restarts the child with the same command for every cell, so
//! every later child reads the same file. The file sits outside the child's
//! writable folder: a student cannot widen the next child's rules.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, path_beneath_rules,
};
use serde::{Deserialize, Serialize};

/// Set on a context's child: the path of its rules file.
pub const RULES_ENV: &str = "AULA_CONFINE";
/// Set on a context's child: its rules until the rules file exists, as
/// JSON (the first child only evaluates evcxr's warm-up, never students'
/// code). Made by the host: a child may not be able to ask rustc where the
/// toolchain is.
pub const BOOT_ENV: &str = "AULA_CONFINE_BOOT";

/// The newest Landlock ABI aula asks for; older kernels get what they have.
const ABI_WANTED: ABI = ABI::V7;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// Folders and files the child may read and execute.
    pub read: Vec<PathBuf>,
    /// Folders the child may read, write, create and remove in.
    pub write: Vec<PathBuf>,
    /// The user and group the child becomes before it runs anything: set
    /// when aula runs as root, whose files and sockets students' code must
    /// not reach as their owner.
    #[serde(default)]
    pub user: Option<(u32, u32)>,
}

/// Whom students' code runs as when the grader is root: a uid and gid of
/// its own for every context and peer, no user's and not `nobody` (which
/// system daemons share). Two contexts never share a uid, so one student's
/// code cannot signal, `prlimit` or `/proc`-read another's where Landlock's
/// signal scope is missing (Linux before 6.12), and RLIMIT_NPROC counts
/// one context's processes alone. Numbers are drawn from this run's pid,
/// so two runs on one machine do not meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxUsers {
    base: u32,
}

/// Where the sandbox's uids start: above the ranges distributions give
/// services (below 1000), people (1000 to 60000), systemd's dynamic users
/// (61184 to 65519) and the subordinate ranges of rootless containers
/// (from 100000, 65536 a user), so no file or process of the machine's
/// belongs to one of them.
const SANDBOX_UID_BASE: u32 = 1_000_000_000;

/// Uids per run: the numbered contexts and peers wrap after this many,
/// long after the first ones are gone.
const SANDBOX_UIDS_PER_RUN: u32 = 256;

impl SandboxUsers {
    /// This run's range: `pid` is at most 2^22 on Linux, so the range stays
    /// under 2^31 (no sign trouble in tools that print uids).
    pub fn for_run(pid: u32) -> SandboxUsers {
        let pid = pid % (1 << 22);
        SandboxUsers {
            base: SANDBOX_UID_BASE + pid * SANDBOX_UIDS_PER_RUN,
        }
    }

    /// The uid and gid of the `n`th context or peer.
    pub fn nth(self, n: usize) -> (u32, u32) {
        let id = self.base + (n as u32 % SANDBOX_UIDS_PER_RUN);
        (id, id)
    }
}

/// Whether this kernel enforces Landlock: grading refuses to run without it
/// unless told `--unsandboxed`.
pub fn available() -> bool {
    let probe = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1));
    probe.and_then(|r| r.create()).is_ok()
}

/// Whether this kernel scopes signals to a Landlock domain (ABI 6, Linux
/// 6.12): under a non-root grader, students' code runs as the grader's own
/// uid, and only this scope keeps it from signalling the grader.
pub fn signals_scoped() -> bool {
    let probe = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .scope(Scope::Signal);
    probe.and_then(|r| r.create()).is_ok()
}

/// What of `/etc` programs read: the dynamic loader's cache, name
/// resolution, time zones, users' names, certificates, Python's settings.
/// Not the rest (`/etc/shadow`, SSH host keys, a CI runner's settings).
const ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/resolv.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl/certs",
    "/etc/alternatives",
    "/etc/python3",
    "/etc/python3.11",
    "/etc/python3.12",
    "/etc/python3.13",
];

/// What every child may read: the system's programs and libraries, the Rust
/// toolchain's libraries, aula's own executable, and a few devices.
pub fn system_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = ["/usr", "/lib", "/lib64", "/bin", "/sbin"]
        .iter()
        .chain(ETC)
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    if let Some(sysroot) = sysroot() {
        paths.push(sysroot.join("lib"));
    }
    if let Ok(exe) = std::env::current_exe() {
        paths.push(exe);
    }
    paths.extend(
        ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
            .iter()
            .map(PathBuf::from),
    );
    paths
}

fn sysroot() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(text.trim())).filter(|p| p.is_dir())
}

/// Opens a context's folders to the unprivileged user its child becomes:
/// evcxr's build folder (made private by evcxr, written by cargo) to read,
/// the working folder to write.
pub fn open_to_user(build: &Path, workdir: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(build, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("opening {} to the sandbox's user", build.display()))?;
    std::os::unix::fs::chown(workdir, Some(uid), Some(gid))
        .with_context(|| format!("giving {} to the sandbox's user", workdir.display()))?;
    Ok(())
}

/// Removes from evcxr's build folder what the cells it built before leave
/// there (their source, their compiled libraries, rustc's incremental
/// caches): the child may read the folder, to load the next cell's library,
/// and the next cell may be another student's. The build itself is kept.
pub fn scrub_build_folder(build: &Path) {
    let _ = std::fs::write(build.join("src/lib.rs"), "");
    let Ok(targets) = std::fs::read_dir(build.join("target")) else {
        return;
    };
    for target in targets.flatten() {
        let debug = target.path().join("debug");
        let _ = std::fs::remove_dir_all(debug.join("incremental"));
        for dir in [debug.clone(), debug.join("deps")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let built_from_cells = ["libcode_", "libctx", "ctx-"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix));
                if built_from_cells && e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// The folder of the toolchain's standard library (`libstd-*.so`), which
/// cells compiled with `-C prefer-dynamic` load.
pub fn std_library_dir() -> Option<PathBuf> {
    let sysroot = sysroot()?;
    let host = std::process::Command::new("rustc")
        .args(["--print", "host-tuple"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())?;
    Some(sysroot.join("lib/rustlib").join(host.trim()).join("lib")).filter(|d| d.is_dir())
}

/// Copies the standard library's shared objects into `dest`, readable by
/// all: the unprivileged user cannot reach the toolchain where rustup keeps
/// it under a private home.
pub fn copy_std_library(dest: &Path) -> Result<PathBuf> {
    let from = std_library_dir().context("finding the toolchain's standard library")?;
    std::fs::create_dir_all(dest)?;
    for e in std::fs::read_dir(&from)?.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".so") {
            std::fs::copy(e.path(), dest.join(&name))
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))?;
    Ok(dest.to_path_buf())
}

/// Writes a context's rules where its child will read them.
pub fn write_rules(path: &Path, rules: &Rules) -> Result<()> {
    let text = serde_json::to_string_pretty(rules)?;
    crate::fs::write_atomically(path, &text).with_context(|| format!("writing {}", path.display()))
}

/// In a context's child, first thing in `main`: confines the process when
/// aula asked for it. Fails closed: a child that cannot confine itself
/// exits before running anything.
pub fn enter_from_env() {
    let Some(path) = std::env::var_os(RULES_ENV) else {
        return;
    };
    let rules = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Rules>(&bytes).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => boot_rules(),
        Err(_) => None,
    };
    let applied = match rules {
        Some(rules) => rules
            .user
            .map_or(Ok(()), become_user)
            .and_then(|()| restrict(&rules))
            .and_then(|()| super::seccomp::install()),
        None => Err(anyhow::anyhow!("unreadable rules file")),
    };
    if let Err(e) = applied {
        eprintln!("aula: cannot confine students' code: {e:#}");
        std::process::exit(125);
    }
}

/// Becomes `uid` and `gid`, with no supplementary groups: root's
/// capabilities go with root's uid. The process has one thread here, so the
/// thread's calls are the process's.
fn become_user((uid, gid): (u32, u32)) -> Result<()> {
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let (uid, gid) = (
        rustix::process::Uid::from_raw(uid),
        rustix::process::Gid::from_raw(gid),
    );
    set_thread_groups(&[]).context("dropping supplementary groups")?;
    set_thread_res_gid(gid, gid, gid).context("becoming the sandbox's group")?;
    set_thread_res_uid(uid, uid, uid).context("becoming the sandbox's user")?;
    if rustix::process::geteuid() != uid || rustix::process::getegid() != gid {
        bail!("still running as another user");
    }
    Ok(())
}

/// Before the host has written the rules: what the host put in
/// [`BOOT_ENV`].
fn boot_rules() -> Option<Rules> {
    serde_json::from_str(&std::env::var(BOOT_ENV).ok()?).ok()
}

/// The rules of a context's first child: read-only access to the system
/// and to evcxr's build folders, write access nowhere.
pub fn boot(system: &[PathBuf], tmp_root: &Path) -> String {
    let mut read = system.to_vec();
    read.push(tmp_root.to_path_buf());
    serde_json::to_string(&Rules {
        read,
        write: Vec::new(),
        user: None,
    })
    .unwrap_or_default()
}

/// Restricts this process (and everything it starts) to `rules`.
pub fn restrict(rules: &Rules) -> Result<()> {
    let abi = ABI_WANTED;
    let read = AccessFs::from_read(abi) | AccessFs::Execute;
    let existing = |paths: &[PathBuf]| -> Vec<PathBuf> {
        paths.iter().filter(|p| p.exists()).cloned().collect()
    };
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()?
        .add_rules(path_beneath_rules(existing(&rules.read), read))?
        .add_rules(path_beneath_rules(
            existing(&rules.write),
            AccessFs::from_all(abi),
        ))?
        // /proc/self as it resolves now: this process's own entries, for
        // backtraces and thread counts, and nobody else's.
        .add_rules(path_beneath_rules(["/proc/self"], AccessFs::from_read(abi)))?
        // Programs write what they throw away there (`Stdio::null()`).
        .add_rules(path_beneath_rules(
            ["/dev/null"],
            AccessFs::ReadFile | AccessFs::WriteFile,
        ))?
        .restrict_self()?;
    if status.ruleset == RulesetStatus::NotEnforced {
        bail!("this kernel does not enforce Landlock");
    }
    Ok(())
}

/// The folder evcxr builds a context's code in, found among the files the
/// child has mapped (the compiled cells it loaded), under `tmp_root`.
pub fn build_folder_of(child: i32, tmp_root: &Path) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{child}/maps")).ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(Path::new)
        .find_map(|p| {
            let rest = p.strip_prefix(tmp_root).ok()?;
            let first = rest.components().next()?;
            Some(tmp_root.join(first))
        })
}

/// A pids cgroup for a run, with one group per context under it, so a
/// student's program can start only so many processes and threads, even
/// when aula runs as root (which RLIMIT_NPROC does not bind).
#[derive(Debug)]
pub struct PidsCgroup {
    root: PathBuf,
}

impl PidsCgroup {
    /// The run's group, under the first pids hierarchy this process may
    /// write to (cgroup v1's `pids`, or v2's unified tree with the `pids`
    /// controller). Groups of runs that died are removed.
    pub fn create() -> Result<PidsCgroup> {
        let candidates = [
            PathBuf::from("/sys/fs/cgroup/pids"),
            PathBuf::from("/sys/fs/cgroup"),
            PathBuf::from("/sys/fs/cgroup/unified"),
        ];
        for base in candidates {
            let v1 = base.join("pids.max").exists() || base.ends_with("pids");
            let v2 = std::fs::read_to_string(base.join("cgroup.subtree_control"))
                .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"));
            let usable = v2 || (v1 && base.join("cgroup.procs").exists());
            if !usable {
                continue;
            }
            remove_dead_groups(&base);
            let root = base.join(format!("aula-{}", std::process::id()));
            if std::fs::create_dir(&root).is_ok() || root.is_dir() {
                // cgroup v2 gives a group's children the controllers its
                // subtree_control names, and pids.max comes with pids.
                if v2 && !v1 {
                    std::fs::write(root.join("cgroup.subtree_control"), "+pids")
                        .context("giving the run's cgroup the pids controller")?;
                }
                return Ok(PidsCgroup { root });
            }
        }
        bail!("no pids cgroup can be created here")
    }

    /// A group of its own for one context, holding at most `max` tasks.
    pub fn group(&self, name: &str, max: u64) -> Result<Arc<Group>> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("pids.max"), max.to_string())
            .with_context(|| format!("limiting {}", dir.display()))?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .with_context(|| format!("opening {}/cgroup.procs", dir.display()))?;
        Ok(Arc::new(Group {
            procs: OwnedFd::from(procs),
            dir,
            memory: None,
        }))
    }
}

/// A memory cgroup for a run, with one group per context under it, so the
/// processes of one check together cannot take more than a set amount of
/// memory: RLIMIT_AS bounds each process, not the 128 a check may start.
/// Under this process's own memory cgroup where it can (cgroup v1's
/// `memory` hierarchy, or v2's with the memory controller).
#[derive(Debug)]
pub struct MemoryCgroup {
    root: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    pub fn create() -> Result<MemoryCgroup> {
        let own = |controller: &str| -> Option<PathBuf> {
            let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
            text.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                let matches = names.split(',').any(|n| n == controller);
                matches.then(|| PathBuf::from(path.trim_start_matches('/')))
            })
        };
        let mut candidates = Vec::new();
        if let Some(path) = own("memory") {
            candidates.push((Path::new("/sys/fs/cgroup/memory").join(path), false));
        }
        candidates.push((PathBuf::from("/sys/fs/cgroup/memory"), false));
        if let Some(path) = own("") {
            candidates.push((Path::new("/sys/fs/cgroup").join(path), true));
        }
        for (base, v2) in candidates {
            let usable = if v2 {
                std::fs::read_to_string(base.join("cgroup.subtree_control"))
                    .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
            } else {
                base.join("memory.limit_in_bytes").exists()
            };
            if !usable {
                continue;
            }
            remove_dead_groups(&base);
            let root = base.join(format!("aula-{}", std::process::id()));
            if std::fs::create_dir(&root).is_ok() || root.is_dir() {
                if v2 {
                    std::fs::write(root.join("cgroup.subtree_control"), "+memory")
                        .context("giving the run's cgroup the memory controller")?;
                }
                return Ok(MemoryCgroup { root, v2 });
            }
        }
        bail!("no memory cgroup can be created here")
    }

    /// A group for one context holding at most `bytes`; the file that
    /// moves the process writing `0` to it into the group.
    fn group(&self, name: &str, bytes: u64) -> Result<OwnedFd> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let limit = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        std::fs::write(dir.join(limit), bytes.to_string())
            .with_context(|| format!("limiting {}", dir.display()))?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .with_context(|| format!("opening {}/cgroup.procs", dir.display()))?;
        Ok(OwnedFd::from(procs))
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        remove_run_groups(&self.root);
    }
}

/// Removes a run's cgroup and its groups. The engine has killed every
/// process by now; a group still busy stays, and the next run removes it.
fn remove_run_groups(root: &Path) {
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(root);
}

/// One context's pids group. A process cannot leave it (that takes writing
/// to another group's `cgroup.procs`, which confined code cannot), whatever
/// it does to its session or process group: so the group is how
/// everything a context's code started is found and ended.
#[derive(Debug)]
pub struct Group {
    /// Moves the process that writes `0` to it into the group.
    procs: OwnedFd,
    dir: PathBuf,
    /// The context's memory group, likewise, where there is one.
    memory: Option<OwnedFd>,
}

impl Group {
    /// Kills every process in the group, and reaps those that were left to
    /// aula (the subreaper) by parents that died, so their pids are given
    /// back to the group's budget; `waited`: the one a `Child` of aula's
    /// waits for (a context's child, a peer), left to it. Bounded: a process
    /// forking meanwhile puts its child in the group, where the next round
    /// finds it, and the group's `pids.max` bounds how many there can be.
    pub fn kill_all(&self, waited: i32) {
        let me = std::process::id() as i32;
        // Every process met, until it is reaped: a zombie is no longer
        // listed in `cgroup.procs` but keeps its place in `pids.current`
        // until its parent (aula, once it is an orphan) waits for it.
        let mut met: Vec<i32> = Vec::new();
        for _ in 0..200 {
            let pids = self.members();
            for &pid in &pids {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                if pid != waited && !met.contains(&pid) {
                    met.push(pid);
                }
            }
            // One that died before it was ever listed here (the pipes'
            // warden's child, killed with it) is aula's zombie now; so is
            // one a warden left when evcxr restarted a dead child.
            for pid in Self::adopted_zombies(me) {
                if pid != waited && !met.contains(&pid) {
                    met.push(pid);
                }
            }
            met.retain(|&pid| !reaped(pid, me));
            // The waited child's zombie is its waiter's to reap; nothing
            // else may hold a place.
            let waited_left = u64::from(
                rustix::process::Pid::from_raw(waited)
                    .is_some_and(|p| rustix::process::test_kill_process(p).is_ok()),
            );
            if pids.is_empty() && met.is_empty() && self.tasks() <= waited_left {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// aula's zombie children that it adopted as subreaper: those in a
    /// process group neither aula's own (cargo, rustc and the like, which
    /// their `Child` waits for) nor their own (a context's warden, a peer,
    /// a reference's half: each leads its group, and its `Child` waits for
    /// it). That is the pipes' warden's child and what it started, left by
    /// a warden that died, in this group or a context's before. Unlisted in
    /// `cgroup.procs` (a zombie's `/proc/PID/cgroup` says `/`), each keeps
    /// its place in its group's budget until reaped.
    fn adopted_zombies(me: i32) -> Vec<i32> {
        let own_group = rustix::process::getpgrp().as_raw_nonzero().get();
        super::children_of(me)
            .into_iter()
            .filter(|&pid| {
                procfs::process::Process::new(pid)
                    .and_then(|p| p.stat())
                    .is_ok_and(|s| s.state == 'Z' && s.pgrp != pid && s.pgrp != own_group)
            })
            .collect()
    }

    /// Sends SIGKILL to every process in the group once, without waiting:
    /// for stopping a cell at once, before [`Group::kill_all`] makes sure.
    pub fn signal_all(&self) {
        for pid in self.members() {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }

    /// The processes in the group now.
    pub fn members(&self) -> Vec<i32> {
        members_of(&self.dir)
    }

    /// The tasks the group's budget counts now, zombies included.
    fn tasks(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("pids.current"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Whether `pid` is gone: reaped here if it was reparented to aula (`me`),
/// as what a dead context's child started is, and has ended.
fn reaped(pid: i32, me: i32) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    let stat = procfs::process::Process::new(pid).and_then(|p| p.stat());
    let Ok(stat) = stat else {
        return true;
    };
    if stat.ppid != me {
        // Still its dying parent's: reparented to aula soon.
        return false;
    }
    !matches!(
        rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG),
        Ok(None)
    )
}

/// The processes in the cgroup at `dir`.
fn members_of(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills what is left in the group at `dir`, in a bounded number of rounds.
fn kill_members(dir: &Path) {
    for _ in 0..50 {
        let pids = members_of(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Moves the calling process into `group`: between fork and exec, so the
/// child is counted from its first instruction. One write(2) on a file
/// opened beforehand: async-signal-safe, and nothing is allocated.
pub fn join_in_child(group: &Group) -> std::io::Result<()> {
    rustix::io::write(&group.procs, b"0")?;
    if let Some(memory) = &group.memory {
        rustix::io::write(memory, b"0")?;
    }
    Ok(())
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        remove_run_groups(&self.root);
    }
}

fn remove_dead_groups(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("aula-")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(children) = std::fs::read_dir(e.path()) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    // A run killed outright (SIGKILL) could not end what
                    // its checks left running: this one does.
                    kill_members(&c.path());
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(e.path());
    }
}

/// What the host needs to confine its contexts.
#[derive(Debug)]
pub struct Confinement {
    /// Read-only paths every child gets.
    pub system: Vec<PathBuf>,
    pub pids: PidsCgroup,
    /// Tasks (processes and threads) of one context's child and everything
    /// it starts.
    pub max_tasks: u64,
    /// Whom children become (a uid each when aula is root).
    pub users: Option<SandboxUsers>,
    /// The memory all processes of one context may take together, and the
    /// cgroup that holds them to it (where the kernel allows one).
    pub memory: Option<(MemoryCgroup, u64)>,
}

impl Confinement {
    /// The groups of one context (or peer) named `name`.
    pub fn group(&self, name: &str) -> Result<Arc<Group>> {
        let group = self.pids.group(name, self.max_tasks)?;
        let Some((memory, bytes)) = &self.memory else {
            return Ok(group);
        };
        let mut group = Arc::into_inner(group).expect("a new group has one owner");
        group.memory = Some(memory.group(name, *bytes)?);
        Ok(Arc::new(group))
    }
}

/// A layer of the sandbox that this machine cannot give: grading refuses
/// to run without it (GRADE-FORMAT 1.1), unless told `--unsandboxed`.
#[derive(Debug)]
pub struct Missing {
    /// What the layer is, for a person: "Landlock", "a pids cgroup".
    pub layer: &'static str,
    pub why: String,
}

impl Confinement {
    /// Every layer of the sandbox, each checked here, so that one this
    /// machine lacks stops grading before anything runs.
    pub fn for_grading(max_tasks: u64, max_memory: Option<u64>) -> Result<Confinement, Missing> {
        if !available() {
            return Err(Missing {
                layer: "Landlock",
                why: "this kernel does not enforce it".to_owned(),
            });
        }
        let pids = PidsCgroup::create().map_err(|e| Missing {
            layer: "a pids cgroup",
            why: format!("{e:#}"),
        })?;
        if let Err(e) = seccomp_available() {
            return Err(Missing {
                layer: "a seccomp filter",
                why: format!("{e:#}"),
            });
        }
        let root = rustix::process::geteuid().is_root();
        if !root && !signals_scoped() {
            // As root, each context has a uid of its own and signals
            // nothing of the grader's; otherwise the scope must do it.
            return Err(Missing {
                layer: "Landlock's signal scope",
                why: "this kernel (older than Linux 6.12) would let students' code, \
                      running as the grader's own user, signal the grader; \
                      grade as root, where it runs as a user of its own"
                    .to_owned(),
            });
        }
        // Where the kernel allows: the issue of a check's total, not of
        // any one process, which RLIMIT_AS already bounds.
        let memory = max_memory.and_then(|bytes| match MemoryCgroup::create() {
            Ok(cg) => Some((cg, bytes)),
            Err(e) => {
                eprintln!("warning: {e:#}; each process's memory is bounded, not a check's");
                None
            }
        });
        Ok(Confinement {
            system: system_paths(),
            pids,
            max_tasks,
            users: root.then(|| SandboxUsers::for_run(std::process::id())),
            memory,
        })
    }
}

/// Whether this kernel takes aula's seccomp filter: tried in a child
/// process, since a filter cannot be taken back.
fn seccomp_available() -> Result<()> {
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(exe)
        .env(SECCOMP_PROBE_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.code() != Some(0) {
        bail!("a child could not install it ({status})");
    }
    Ok(())
}

/// Set on a child that only tries the seccomp filter and exits.
pub const SECCOMP_PROBE_ENV: &str = "AULA_SECCOMP_PROBE";

/// In `main`: with [`SECCOMP_PROBE_ENV`] set, installs the filter and exits
/// with whether it could.
pub fn seccomp_probe_from_env() {
    if std::env::var_os(SECCOMP_PROBE_ENV).is_none() {
        return;
    }
    use rustix::net::{AddressFamily, SocketType, socket};
    let ok = rustix::thread::set_no_new_privs(true).is_ok()
        && super::seccomp::install().is_ok()
        && socket(AddressFamily::UNIX, SocketType::STREAM, None)
            .is_err_and(|e| e == rustix::io::Errno::PERM);
    std::process::exit(if ok { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_of_a_run_has_a_uid_of_its_own_and_runs_do_not_meet() {
        let run = SandboxUsers::for_run(4_194_303);
        let ids: std::collections::HashSet<_> = (1..=255).map(|n| run.nth(n)).collect();
        assert_eq!(ids.len(), 255);
        for (uid, gid) in &ids {
            assert_eq!(uid, gid);
            assert!((SANDBOX_UID_BASE..1 << 31).contains(uid));
        }
        let other = SandboxUsers::for_run(4_194_302);
        assert!((1..=255).all(|n| !ids.contains(&other.nth(n))));
    }

    #[test]
    fn the_build_folder_is_the_first_component_under_the_root() {
        let me = std::process::id() as i32;
        // This test's own executable is mapped; its folder stands in for
        // evcxr's build folder.
        let exe = std::env::current_exe().unwrap();
        let root = exe.parent().unwrap().parent().unwrap();
        let found = build_folder_of(me, root).unwrap();
        assert!(exe.starts_with(&found));
        assert_eq!(found.parent(), Some(root));
    }
}
