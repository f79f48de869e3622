//! Keeping students' code in bounds and leaving nothing behind: resource
//! limits on each context's child, the runner as subreaper of everything its
//! children start, a sweep of descendants, and children that end themselves
//! when aula dies. Below it, the confinement of grading (`confine`: an
//! unprivileged user, Landlock, a pids cgroup) and its system-call filter
//! (`seccomp`).

pub mod confine;
pub mod pipes;
mod seccomp;

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use rustix::process::{Pid, Resource, Rlimit, Signal};

/// Limits applied to every process that runs students' code (the contexts'
/// children, and what they start). `None` leaves the limit as inherited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_AS: address space of each process, in bytes.
    pub address_space: Option<u64>,
    /// RLIMIT_FSIZE: largest file a process may write, in bytes.
    pub file_size: Option<u64>,
    /// RLIMIT_NPROC: processes of the user (Linux counts all of the user's
    /// processes, and does not enforce it for root).
    pub processes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            address_space: Some(4 << 30),
            file_size: Some(64 << 20),
            processes: Some(4096),
        }
    }
}

impl Limits {
    /// Applies the limits in the child between fork and exec.
    pub fn apply_to(self, command: &mut Command) {
        let limits = [
            (Resource::As, self.address_space),
            (Resource::Fsize, self.file_size),
            (Resource::Nproc, self.processes),
        ];
        // SAFETY: only setrlimit runs between fork and exec: a raw system
        // call, which is async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                for (resource, limit) in limits {
                    if let Some(n) = limit {
                        let rl = Rlimit {
                            current: Some(n),
                            maximum: Some(n),
                        };
                        rustix::process::setrlimit(resource, rl)?;
                    }
                }
                Ok(())
            });
        }
    }
}

/// Limits of the compiler that builds students' code when grading: rustc
/// runs as the grader, outside the sandbox, and code can keep it busy on
/// purpose (an endless `const`, an exponential macro, a huge `static`).
/// Set through aula as `RUSTC_WRAPPER` ([`wrap_rustc_from_env`]); the
/// host's wall clock (`--compile-timeout`) comes first, and the CPU limit
/// is a backstop for a host that is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompilerLimits {
    pub address_space: u64,
    pub file_size: u64,
    pub cpu_seconds: u64,
}

/// Set in the compiler's environment: its limits, `AS,FSIZE,CPU`.
pub const RUSTC_LIMITS_ENV: &str = "AULA_RUSTC_LIMITS";

impl CompilerLimits {
    pub fn for_compile_limit(limit: std::time::Duration) -> CompilerLimits {
        CompilerLimits {
            address_space: 4 << 30,
            file_size: 256 << 20,
            cpu_seconds: limit.as_secs() + 10,
        }
    }

    pub fn encode(&self) -> String {
        format!(
            "{},{},{}",
            self.address_space, self.file_size, self.cpu_seconds
        )
    }

    fn decode(text: &str) -> Option<CompilerLimits> {
        let mut parts = text.split(',').map(|p| p.parse::<u64>().ok());
        let limits = CompilerLimits {
            address_space: parts.next()??,
            file_size: parts.next()??,
            cpu_seconds: parts.next()??,
        };
        parts.next().is_none().then_some(limits)
    }
}

/// First thing in `main`: as cargo's `RUSTC_WRAPPER` (`aula RUSTC ARGS...`)
/// with [`RUSTC_LIMITS_ENV`] set, limits this process and becomes the
/// compiler. Fails closed: limits that cannot be set stop the compile.
pub fn wrap_rustc_from_env() {
    let Some(text) = std::env::var_os(RUSTC_LIMITS_ENV) else {
        return;
    };
    let mut args = std::env::args_os().skip(1);
    let (Some(limits), Some(rustc)) = (text.to_str().and_then(CompilerLimits::decode), args.next())
    else {
        eprintln!("aula: unusable {RUSTC_LIMITS_ENV}");
        std::process::exit(125);
    };
    for (resource, n) in [
        (Resource::As, limits.address_space),
        (Resource::Fsize, limits.file_size),
        (Resource::Cpu, limits.cpu_seconds),
    ] {
        let rl = Rlimit {
            current: Some(n),
            maximum: Some(n),
        };
        if let Err(e) = rustix::process::setrlimit(resource, rl) {
            eprintln!("aula: cannot limit the compiler: {e}");
            std::process::exit(125);
        }
    }
    // `env!` reads the compiler's environment, and a macro can spell it so
    // that no check of the code sees it: the compiler gets only what
    // building needs, never the grader's variables (a CI runner's tokens).
    let kept = std::env::vars_os().filter(|(k, _)| compiler_needs(&k.to_string_lossy()));
    let err = Command::new(rustc).args(args).env_clear().envs(kept).exec();
    eprintln!("aula: cannot run the compiler: {err}");
    std::process::exit(125);
}

/// Gives `command` an environment of its own instead of the grader's: a
/// plain `PATH` and a UTF-8 locale, nothing else. What aula's child needs
/// is set on the command afterwards.
pub fn clean_environment(command: &mut Command) {
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8");
}

/// Whether the compiler of students' code keeps the variable `name`: what
/// cargo hands rustc for the crate (`CARGO_PKG_*` and the like, never a
/// registry token), rustc's and rustup's own, evcxr's, and the basics.
fn compiler_needs(name: &str) -> bool {
    let exact = [
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "LD_LIBRARY_PATH",
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_TMPDIR",
        "RUSTC",
        "RUSTFLAGS",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        RUSTC_LIMITS_ENV,
    ];
    let prefixes = [
        "CARGO_PKG_",
        "CARGO_CFG_",
        "CARGO_BIN_",
        "EVCXR_",
        "AULA_BUILD_",
    ];
    exact.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))
}

/// Makes this process the reaper of its orphaned descendants, so a process a
/// student's code starts and detaches (a double fork, `setsid`) still ends up
/// where `kill_descendants` finds it.
pub fn become_subreaper() {
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
}

/// Every process below `root`, from a snapshot of /proc.
/// The processes whose parent is `pid` now, from each of its threads'
/// `children` file (a child's parent is the thread that started it, or
/// the one it was handed to as an orphan); zombies included.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

fn descendants(root: i32) -> Vec<i32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let parents: Vec<(i32, i32)> = all
        .flatten()
        .filter_map(|p| p.stat().ok().map(|s| (s.pid, s.ppid)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Kills every descendant of this process but those in the process groups
/// `keep` (warm contexts another run will use), in a bounded number of sweeps
/// (a process may fork while the sweep runs). Returns how many were killed.
pub fn kill_descendants(keep: &[i32]) -> usize {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let mut killed = 0;
    for _ in 0..20 {
        let found: Vec<i32> = descendants(me)
            .into_iter()
            .filter(|&pid| {
                let group = Pid::from_raw(pid)
                    .and_then(|p| rustix::process::getpgid(Some(p)).ok())
                    .map_or(0, |g| g.as_raw_nonzero().get());
                !keep.contains(&group)
            })
            .collect();
        if found.is_empty() {
            break;
        }
        for pid in found {
            if let Some(pid) = Pid::from_raw(pid) {
                if rustix::process::kill_process(pid, Signal::KILL).is_ok() {
                    killed += 1;
                }
                // Reap it if it is ours, so it does not linger as a zombie.
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    killed
}

/// Kills every descendant of this process whose environment holds
/// `key=value`: how a context's compiler is found (evcxr runs cargo in this
/// process, with the build environment the context was given, which cargo
/// passes on to rustc). Returns how many were killed.
pub fn kill_descendants_with_env(key: &str, value: &str) -> usize {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let wanted = format!("{key}={value}");
    let mut killed = 0;
    for pid in descendants(me) {
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(|e| e == wanted.as_bytes())
            && let Some(p) = Pid::from_raw(pid)
            && rustix::process::kill_process(p, Signal::KILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

/// Set in the environment of each context's child: aula's pid, which the
/// child watches (see [`watch_parent`]).
pub const PARENT_ENV: &str = "AULA_PARENT_PID";

/// In a context's child: when aula dies (`kill -9`, the OOM killer, a CI
/// timeout), end this process and its process group, so nothing of a
/// student's outlives the run. A thread polls the parent's pid, which
/// changes when the child is reparented; unlike `PR_SET_PDEATHSIG`, this
/// does not fire when the thread that forked the child ends, as aula's
/// threads do.
pub fn watch_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return;
    };
    std::thread::spawn(move || {
        let parent_now = || rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        // Blocked until the parent ends, with no timeout, where the kernel
        // gives a pidfd: a thread that wakes every 100 ms would make every
        // server look busy to `exec::net::idle`.
        let pidfd = rustix::process::Pid::from_raw(parent).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        // Checked after opening, so the pidfd is not a reused pid's.
        if let Some(fd) = pidfd.filter(|_| parent_now() == parent) {
            use std::os::fd::AsRawFd as _;
            let mut entry = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the length given.
            while unsafe { libc::poll(&mut entry, 1, -1) } < 0 {}
        }
        loop {
            let now = parent_now();
            if now != parent {
                // The child leads its process group (see `Kernel::start`).
                let me = rustix::process::getpid();
                let _ = rustix::process::kill_process_group(me, Signal::KILL);
                std::process::exit(137);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_applied_to_the_child() {
        let mut command = Command::new("sh");
        command.args(["-c", "ulimit -f; ulimit -v"]);
        Limits {
            address_space: Some(1 << 30),
            file_size: Some(1 << 20),
            processes: None,
        }
        .apply_to(&mut command);
        let out = command.output().unwrap();
        // sh reports both in 1024-byte blocks (some shells use 512 for -f).
        let text = String::from_utf8(out.stdout).unwrap();
        let values: Vec<&str> = text.lines().collect();
        assert!(matches!(values[0], "1024" | "2048"), "{text}");
        assert_eq!(values[1], "1048576", "{text}");
    }

    #[test]
    fn descendants_are_found_through_grandchildren() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while descendants(pid).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let found = descendants(pid);
        assert_eq!(found.len(), 2);
        for p in found {
            let _ = rustix::process::kill_process(Pid::from_raw(p).unwrap(), Signal::KILL);
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
