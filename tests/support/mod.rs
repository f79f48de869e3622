//! Helpers shared by the integration tests.

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
