//! Installing aula as the README says (`cargo install --locked --path .`),
//! into a folder of the test's own, and using the installed command from
//! another folder, as a student in a folder of copies or an instructor in
//! a course repository would.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn an_installed_aula_says_its_version_and_runs_a_lesson_from_another_folder() {
    let prefix = tempfile::tempdir().unwrap();
    // The tests' own build folder: what `cargo test --release` built is
    // what gets installed, without building it again. `cargo test` holds
    // the folder's lock only while it builds, not while tests run.
    let build = PathBuf::from(env!("CARGO_BIN_EXE_aula"))
        .ancestors()
        .nth(2)
        .expect("TARGET/release/aula")
        .to_path_buf();
    let out = Command::new(env!("CARGO"))
        .args(["install", "--locked", "--offline", "--path"])
        .arg(root())
        .arg("--root")
        .arg(prefix.path())
        .arg("--target-dir")
        .arg(&build)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let aula = prefix.path().join("bin/aula");

    let version = Command::new(&aula).arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    assert!(
        version.starts_with(&format!(
            "aula {} (built with rustc ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );

    // From a folder that is not the repository: the lesson alone.
    let elsewhere = tempfile::tempdir().unwrap();
    let lesson = elsewhere.path().join("eco.md");
    std::fs::copy(root().join("tests/fixtures/servers/idle.md"), &lesson).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ran = Command::new(&aula)
        .args(["run", "eco.md", "--exercise", "eco-em-laco"])
        .current_dir(elsewhere.path())
        .env("AULA_CACHE_DIR", cache.path())
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}
