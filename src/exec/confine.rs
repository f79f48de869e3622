//! Confinement of the processes that run students' code when grading: files
//! through Landlock, processes through a pids cgroup.
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
}

/// Whether this kernel enforces Landlock: grading refuses to run without it
/// unless told `--unsandboxed`.
pub fn available() -> bool {
    let probe = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1));
    probe.and_then(|r| r.create()).is_ok()
}

/// What every child may read: the system's programs and libraries, the Rust
/// toolchain's libraries, aula's own executable, and a few devices.
pub fn system_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc"]
        .iter()
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

/// Writes a context's rules where its child will read them.
pub fn write_rules(path: &Path, rules: &Rules) -> Result<()> {
    let text = serde_json::to_string_pretty(rules)?;
    crate::lesson::write_atomically(path, &text)
        .with_context(|| format!("writing {}", path.display()))
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
        Some(rules) => restrict(&rules),
        None => Err(anyhow::anyhow!("unreadable rules file")),
    };
    if let Err(e) = applied {
        eprintln!("aula: cannot confine students' code: {e:#}");
        std::process::exit(125);
    }
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
        }))
    }
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
        for _ in 0..200 {
            let pids = self.members();
            if pids.is_empty() {
                return;
            }
            for &pid in &pids {
                if let Some(p) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
            for &pid in pids.iter().filter(|&&p| p != waited) {
                reap_if_orphan(pid, me);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
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

    fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// Waits for `pid` if it was reparented to aula (`me`), as what a dead
/// context's child started is.
fn reap_if_orphan(pid: i32, me: i32) {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let stat = procfs::process::Process::new(pid).and_then(|p| p.stat());
    let Ok(stat) = stat else {
        return;
    };
    if stat.ppid != me {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(1)),
            _ => return,
        }
    }
}

/// Moves the calling process into `group`: between fork and exec, so the
/// child is counted from its first instruction. One write(2) on a file
/// opened beforehand: async-signal-safe, and nothing is allocated.
pub fn join_in_child(group: &Group) -> std::io::Result<()> {
    rustix::io::write(&group.procs, b"0")
        .map(|_| ())
        .map_err(Into::into)
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // The engine has killed every process by now; a group still busy
        // stays, and the next run removes it.
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&self.root);
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
    /// `None` where no pids cgroup can be made (then RLIMIT_NPROC is all).
    pub pids: Option<PidsCgroup>,
    /// Tasks (processes and threads) of one context's child and everything
    /// it starts.
    pub max_tasks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
