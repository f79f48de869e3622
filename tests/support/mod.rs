//! Helpers shared by the integration tests.
// Each test crate uses a part of these.
#![allow(dead_code)]

use std::process::Command;

/// Runs a Python snippet with `python3`; `None` when Python or the module
/// it needs is missing on a developer's machine. CI installs them (`.ci/run`
/// sets CI=true), so there a missing one fails the test.
pub fn python(module: &str, script: &str, args: &[&str]) -> Option<String> {
    let available = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var("CI").is_err(),
            "python3 with `{module}` is needed in CI"
        );
        eprintln!("skipped: python3 with `{module}` is not installed");
        return None;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Every file under `dir`, read as text (lossily).
pub fn all_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out += &all_text(&p);
        } else {
            out += &String::from_utf8_lossy(&std::fs::read(&p).unwrap());
        }
    }
    out
}

/// How many processes have `arg` among their arguments.
pub fn processes_with_arg(arg: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|c| c.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
        .count()
}

/// `aula ARGS` run from `dir`, in English, with `env` added: its exit
/// status, stdout and stderr.
pub fn aula_in(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(args)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("aula runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
