//! The sandbox of `aula grade` (GRADE-FORMAT.md 1.1, docs/sandbox.md)
//! against submissions written to get out of it: the real binary, as CI runs
//! it (root, a machine like this). Each test is bounded in time and size.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

/// Batches start evcxr contexts: one at a time on a small machine.
static EVCXR: Mutex<()> = Mutex::new(());

/// In the grader's environment, as a CI runner's token would be.
const SECRET: &str = "segredo-do-corretor-8812";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> PathBuf {
    root().join("tests/fixtures/sandbox/ref.md")
}

/// `aula grade` of these fixture submissions, copied into `tmp/subs`.
fn grade_command(subs: &[&str], extra: &[&str], tmp: &Path) -> Command {
    let dir = tmp.join("subs");
    std::fs::create_dir_all(&dir).unwrap();
    for s in subs {
        let from = root().join(format!("tests/fixtures/sandbox/subs/{s}.md"));
        std::fs::copy(from, dir.join(format!("{s}.md"))).unwrap();
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_aula"));
    command
        .args([
            "grade",
            reference().to_str().unwrap(),
            dir.to_str().unwrap(),
        ])
        .args(["--out", tmp.join("out").to_str().unwrap(), "-j", "1"])
        .args(["--format", "json"])
        .args(extra)
        .current_dir(tmp)
        .env("AULA_TEST_GRADER_TOKEN", SECRET)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    command
}

/// A batch that finished (exit 0): its JSON report, aula's standard error,
/// and how long it took.
struct Graded {
    stdout: String,
    stderr: String,
    report: Value,
    took: Duration,
}

fn grade(subs: &[&str], extra: &[&str], tmp: &Path) -> Graded {
    let begun = Instant::now();
    let out = grade_command(subs, extra, tmp).output().unwrap();
    let took = begun.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report = serde_json::from_str(&stdout).unwrap();
    Graded {
        stdout,
        stderr,
        report,
        took,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn student<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["students"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["student"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

/// `name`'s check `check` of the only exercise: its verdict, message and diff.
fn check(report: &Value, name: &str, check: &str) -> (String, String, String) {
    let checks = student(report, name)["exercises"][0]["checks"]
        .as_array()
        .unwrap();
    let c = checks
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} check in {checks:#?}"));
    let field = |f: &str| c[f].as_str().unwrap_or_default().to_owned();
    (field("verdict"), field("message"), field("diff"))
}

fn score(report: &Value, name: &str) -> f64 {
    student(report, name)["score"].as_f64().unwrap()
}

#[test]
fn captures_swapped_for_links_read_as_the_checks_failure_and_the_graders_environment_stays_out() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let planted = Path::new("/tmp/aula-sandbox-planted-gate");
    let _ = std::fs::remove_file(planted);
    let graded = grade(&["links", "spelled", "ana"], &[], tmp.path());
    let report = &graded.report;

    // The swapped client's output is what it printed into the file it was
    // given (nothing), not the grader's environment, /dev/zero or a FIFO;
    // the second client printed its own environment, which is not the
    // grader's.
    let (verdict, _, diff) = check(report, "links", "client");
    assert_eq!(verdict, "mismatch", "{diff}");
    assert!(diff.contains("\n-OLA\n+\n"), "{diff}");
    assert!(
        diff.contains("\n+PATH=/usr/local/bin:/usr/bin:/bin\n"),
        "{diff}"
    );
    assert!(!planted.exists(), "the gate was created through a link");
    // `env!` spelled by a macro finds nothing of the grader's in the
    // compiler's environment.
    let (verdict, _, _) = check(report, "spelled", "client");
    assert_eq!(verdict, "compile_error", "{report:#}");
    let out = support::all_text(&tmp.path().join("out"));
    for place in [&graded.stdout, &graded.stderr, &out] {
        assert!(
            !place.contains(SECRET),
            "the grader's environment got out:\n{place}"
        );
    }
    // The rest of the batch is untouched.
    assert_eq!(score(report, "ana"), 1.0, "{report:#}");
    assert!(graded.took < Duration::from_secs(150), "{:?}", graded.took);
}

#[test]
fn a_daemon_a_check_leaves_is_gone_before_the_next_check_and_touches_nothing() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let sleeper = "30.4471";
    assert_eq!(
        support::processes_with_arg(sleeper),
        0,
        "a sleeper from before"
    );
    let mut child = grade_command(&["a-daemon", "ana"], &[], tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = tmp.path().join("out/grading-log.jsonl");
    // Once the daemon's student is in the results log, every check of its
    // is over: nothing it started may be alive from then on, while Ana's
    // checks run (students are graded in name order).
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut daemon_done = false;
    let mut seen_alive_after = 0;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        daemon_done =
            daemon_done || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"a-daemon\""));
        if daemon_done {
            seen_alive_after += support::processes_with_arg(sleeper);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(daemon_done, "the batch never logged the daemon's student");
    assert_eq!(
        seen_alive_after, 0,
        "a process of a finished check was alive"
    );
    let report: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    // The daemon did not write the second client's answer for it: the
    // second client ran in the same context after the first, and what it
    // said stayed said.
    let (verdict, _, diff) = check(&report, "a-daemon", "client");
    assert_eq!(verdict, "mismatch", "{diff}");
    assert!(diff.contains("\n+nada\n"), "{diff}");
    assert_eq!(score(&report, "ana"), 1.0, "{report:#}");
    assert_eq!(support::processes_with_arg(sleeper), 0);
}

/// The peak resident memory of a running process, in KiB (`VmHWM`).
fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_line_with_no_end_on_evcxrs_pipes_does_not_reach_the_graders_memory() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // The client writes 1 GiB with no newline on each of evcxr's two pipes:
    // without the pipes' warden, evcxr in the grader holds 2 GiB of it.
    // It writes to every other pipe it finds too: the grader hands down
    // one at fd 77 without close-on-exec, as a CI runner might, which
    // students' code must not have.
    let (inherited_r, inherited_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::fs::fcntl_setfl(&inherited_r, rustix::fs::OFlags::NONBLOCK).unwrap();
    let mut command = grade_command(&["flood", "ana"], &[], tmp.path());
    let raw = std::os::fd::AsRawFd::as_raw_fd(&inherited_w);
    // SAFETY: dup2 only, between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            match libc::dup2(raw, 77) {
                77 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(inherited_w);
    let (pid, mut peak) = (child.id(), 0);
    let deadline = Instant::now() + Duration::from_secs(150);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        peak = peak.max(peak_memory_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(peak > 0, "the grader's memory was never read");
    assert!(
        peak < 768 * 1024,
        "the grader took {} MiB at its peak",
        peak / 1024
    );
    let mut first = [0u8; 16];
    // Every writer is gone: the end of the pipe, with nothing in it.
    assert_eq!(
        rustix::io::read(&inherited_r, &mut first).ok(),
        Some(0),
        "students' code wrote to a descriptor the grader inherited"
    );
    // The flood cost the flooder its check (evcxr's end-of-cell line went
    // with the rest of the line it was glued to), and nobody else anything.
    let (verdict, _, _) = check(&report, "flood", "client");
    assert_eq!(verdict, "timeout", "{report:#}");
    assert_eq!(score(&report, "ana"), 1.0, "{report:#}");
}

#[test]
fn a_compile_that_never_ends_is_that_checks_timeout_and_the_batch_goes_on() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let graded = grade(&["forever", "ana"], &["--compile-timeout", "5"], tmp.path());
    let report = &graded.report;
    let (verdict, message, _) = check(report, "forever", "server");
    assert_eq!(verdict, "timeout", "{report:#}");
    assert!(message.contains("the compiler ran too long"), "{message}");
    assert!(message.contains("after 5 s"), "{message}");
    assert_eq!(student(report, "forever")["status"], "graded");
    assert_eq!(score(report, "ana"), 1.0, "{report:#}");
    // Two students, one compile cut at 5 s: minutes would mean the
    // compiler was waited for.
    assert!(graded.took < Duration::from_secs(100), "{:?}", graded.took);
    assert!(rustc_pids_below(std::process::id()).is_empty());
}

#[test]
fn ctrl_c_during_a_compile_that_never_ends_stops_the_batch_with_130() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let mut child = grade_command(&["forever"], &[], tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Contexts start and the reference's halves build; then one compiler
    // runs on and on: the student's (the default limit is a minute).
    let give_up = Instant::now() + Duration::from_secs(90);
    let mut first_seen: Vec<(u32, Instant)> = Vec::new();
    let endless = loop {
        assert!(Instant::now() < give_up, "no compiler ran for 4 s");
        let now = rustc_pids_below(child.id());
        first_seen.retain(|(p, _)| now.contains(p));
        for p in now {
            if !first_seen.iter().any(|(q, _)| *q == p) {
                first_seen.push((p, Instant::now()));
            }
        }
        if let Some((p, _)) = first_seen
            .iter()
            .find(|(_, t)| t.elapsed() > Duration::from_secs(4))
        {
            break *p;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "{:?}",
        sent.elapsed()
    );
    assert!(!std::path::Path::new(&format!("/proc/{endless}")).exists());
}

/// The rustc processes among `pid`'s descendants.
fn rustc_pids_below(pid: u32) -> Vec<u32> {
    let procs: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (name, after) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((e.file_name().to_str()?.parse().ok()?, ppid, name.to_owned()))
        })
        .collect();
    let mut below = vec![pid];
    let mut i = 0;
    while i < below.len() {
        let parent = below[i];
        below.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    procs
        .iter()
        .filter(|p| p.2.starts_with("rustc") && below[1..].contains(&p.0))
        .map(|p| p.0)
        .collect()
}

#[test]
fn students_code_runs_as_a_sandbox_user_and_reaches_neither_root_files_nor_unix_sockets() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // A socket anyone may connect to, as a container engine's socket is to
    // its group: only the seccomp filter stands between it and the code.
    let path = Path::new("/tmp/aula-sandbox-test.sock");
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let graded = grade(&["peek", "ana"], &[], tmp.path());
    let accepted = listener.accept().is_ok();
    let _ = std::fs::remove_file(path);
    let (verdict, _, diff) = check(&graded.report, "peek", "client");
    assert_eq!(verdict, "mismatch", "{diff}");
    // A uid of the sandbox's own (docs/sandbox.md): not root, not `nobody`
    // (which daemons share), real, effective, saved and file uid alike.
    let uids: Vec<u64> = diff
        .lines()
        .find_map(|l| l.strip_prefix("+Uid:"))
        .unwrap_or_else(|| panic!("no Uid in {diff}"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(uids.len(), 4, "{diff}");
    assert!(uids.iter().all(|&u| u == uids[0]), "{diff}");
    assert!((1_000_000_000..1 << 31).contains(&uids[0]), "{diff}");
    assert!(diff.contains("\n+CapEff:\t0000000000000000\n"), "{diff}");
    assert!(
        diff.contains("\n+shadow: Err(PermissionDenied)\n"),
        "{diff}"
    );
    assert!(diff.contains("\n+unix: Err(PermissionDenied)\n"), "{diff}");
    assert!(diff.contains("\n+shm: refused\n"), "{diff}");
    assert!(diff.contains("\n+prlimit of another: refused\n"), "{diff}");
    assert!(diff.contains("\n+unshare: refused\n"), "{diff}");
    assert!(diff.contains("\n+clone3: unknown\n"), "{diff}");
    assert!(!accepted, "students' code connected to the host's socket");
}

/// aula confined as a context's child is, then running `sh -c script`
/// instead of evcxr's runtime (as a confined Python peer runs python3).
fn confined_shell(rules: &Value, script: &str, tmp: &Path) -> std::process::Output {
    let file = tmp.join("rules.json");
    std::fs::write(&file, rules.to_string()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["-c", script])
        .env("AULA_CONFINE", &file)
        .env("AULA_PEER_EXEC", "/bin/sh")
        .output()
        .unwrap()
}

#[test]
fn the_sandboxs_user_alone_keeps_root_only_files_out_of_reach() {
    // Rules that let the whole of /etc be read: what stops /etc/shadow here
    // is that the child is no longer root.
    let tmp = tempfile::tempdir().unwrap();
    let rules = serde_json::json!({
        "read": ["/usr", "/lib", "/lib64", "/bin", "/etc", env!("CARGO_BIN_EXE_aula")],
        "write": [tmp.path()],
        "user": [65534, 65534],
    });
    let out = confined_shell(
        &rules,
        // The shell is aula's process, exec'd: its /proc entry is the one
        // Landlock lets it read, not grep's.
        "grep -E '^(Uid|Gid|Groups|CapEff):' /proc/$$/status; cat /etc/shadow >/dev/null && echo shadow read",
        tmp.path(),
    );
    let said = text(&out.stdout);
    assert!(
        said.contains("Uid:\t65534\t65534\t65534\t65534\n"),
        "{said}"
    );
    assert!(
        said.contains("Gid:\t65534\t65534\t65534\t65534\n"),
        "{said}"
    );
    let groups = said
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .unwrap_or("?");
    assert_eq!(groups["Groups:".len()..].trim(), "", "{said}");
    assert!(said.contains("CapEff:\t0000000000000000\n"), "{said}");
    assert!(!said.contains("shadow read"), "{said}");
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn what_an_earlier_cell_compiled_is_gone_before_the_context_runs_the_next() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let graded = grade(&["scavenger", "ana"], &[], tmp.path());
    let (_, _, diff) = check(&graded.report, "scavenger", "client");
    assert!(diff.contains("\n+build folder found: true\n"), "{diff}");
    assert!(
        diff.contains("\n+earlier code found in 0 files\n"),
        "{diff}"
    );
}

#[test]
fn a_reference_that_fails_its_own_checks_in_the_sandbox_stops_the_batch_with_exit_2() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // The reference's server answers in lower case: its own clients fail.
    let broken = tmp.path().join("ref.md");
    let original = std::fs::read_to_string(reference()).unwrap();
    std::fs::write(&broken, original.replace("to_uppercase", "to_lowercase")).unwrap();
    let subs = tmp.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    for s in ["ana", "links"] {
        let from = root().join(format!("tests/fixtures/sandbox/subs/{s}.md"));
        std::fs::copy(from, subs.join(format!("{s}.md"))).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["grade", broken.to_str().unwrap(), subs.to_str().unwrap()])
        .args(["--out", tmp.path().join("out").to_str().unwrap(), "-j", "1"])
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the reference does not pass its own checks in the sandbox"),
        "{stderr}"
    );
    assert!(stderr.contains("eco/server: mismatch"), "{stderr}");
    assert!(!tmp.path().join("out/grades.csv").exists());
}

#[test]
fn the_processes_of_a_check_together_stay_within_its_memory() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // 640 MiB a process and a check: one hog of 300 MiB fits, three do not.
    let graded = grade(&["hog", "ana"], &["--max-memory", "640"], tmp.path());
    let (_, _, diff) = check(&graded.report, "hog", "client");
    assert!(diff.contains("signal: 9 (SIGKILL)"), "{diff}");
    assert!(diff.contains("exit status: 0"), "{diff}");
    assert_eq!(score(&graded.report, "ana"), 1.0);
}

#[test]
fn a_layer_the_machine_cannot_give_stops_the_batch_with_exit_2_naming_it() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    // A grader that is not root cannot make a pids cgroup on this machine
    // (CI's, as root, has every layer): run aula as `nobody`, with
    // everything it needs readable and a folder it may write.
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let open = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    open(tmp.path(), 0o755).unwrap();
    let aula = tmp.path().join("aula");
    std::fs::copy(env!("CARGO_BIN_EXE_aula"), &aula).unwrap();
    std::fs::copy(reference(), tmp.path().join("ref.md")).unwrap();
    let subs = tmp.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/sandbox/subs/ana.md"),
        subs.join("ana.md"),
    )
    .unwrap();
    open(&subs, 0o755).unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    open(&home, 0o777).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&aula)
        .args(["grade", "ref.md", "subs", "--out"])
        .arg(home.join("out"))
        .current_dir(tmp.path())
        .env("HOME", &home)
        .env("TMPDIR", &home)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .expect("setpriv (util-linux) runs aula as another user");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a pids cgroup cannot be set up"),
        "{stderr}"
    );
    assert!(stderr.contains("--unsandboxed"), "{stderr}");
    assert!(!home.join("out/grades.csv").exists());
}

/// aula as cargo's `RUSTC_WRAPPER` (grading) limits the compiler before it
/// becomes it; here "the compiler" is a shell that spins, as rustc does on
/// an endless `const`. The CPU limit is the backstop when the host that
/// would stop it by the wall clock is gone.
#[test]
fn the_compilers_cpu_limit_stops_a_compile_that_never_ends() {
    use std::os::unix::process::ExitStatusExt as _;
    let limits = format!("{},{},{}", 4u64 << 30, 256u64 << 20, 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["sh", "-c", "while :; do :; done"])
        .env("AULA_RUSTC_LIMITS", limits)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let begun = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if begun.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second of CPU did not stop the compiler in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SIGXCPU at the soft limit (the hard one is the same second: SIGKILL
    // would do as well).
    assert!(
        matches!(status.signal(), Some(24 | 9)),
        "the compiler ended otherwise: {status:?}"
    );
    assert!(
        begun.elapsed() < Duration::from_secs(20),
        "{:?}",
        begun.elapsed()
    );
}
