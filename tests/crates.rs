//! Crates in lessons (LESSON-FORMAT 1.2, "Crates"): `:dep` lines, built
//! once and kept, a second run without the network, errors at the lesson's
//! line, grading with the reference's crates only. On the fixtures under
//! `tests/fixtures/crates/`; CI reaches crates.io, as the first run of a
//! lesson with crates needs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use serde_json::Value;

mod support;

/// Runs start evcxr contexts and cargo builds: one at a time.
static ONE: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `aula ARGS` from the project's root, with `cache` as its cache folder,
/// in English, with `env` added.
fn aula(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<(&str, &std::ffi::OsStr)> = vec![("AULA_CACHE_DIR", cache.as_os_str())];
    all.extend(env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(*v))));
    support::aula_in(&root(), args, &all)
}

/// The built sets in a cache folder, and what each holds: (folder, when its
/// list of crates was written).
fn sets(cache: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(cache.join("crates")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| {
            let externs = e.path().join("externs.json");
            let written = std::fs::metadata(&externs)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (e.path(), written)
        })
        .collect()
}

fn assert_all_pass(stdout: &str, stderr: &str) {
    let r: Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stderr}"));
    let lesson = &r["lessons"][0];
    assert_eq!(lesson["cells"][0]["verdict"], "pass", "{r:#}\n{stderr}");
    assert_eq!(lesson["exercises"][0]["verdict"], "pass", "{r:#}\n{stderr}");
}

#[test]
fn a_tokio_lesson_builds_its_crates_once_and_runs_again_without_the_network() {
    let cache = tempfile::tempdir().unwrap();
    let lesson = "tests/fixtures/crates/tokio.md";
    let args = ["run", "--no-cache", "--format", "json", lesson];
    let begun = Instant::now();
    let (status, stdout, stderr) = aula(&args, cache.path(), &[]);
    let cold = begun.elapsed();
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    assert_all_pass(&stdout, &stderr);
    let first = sets(cache.path());
    assert_eq!(first.len(), 1, "one set, nothing half-built: {first:?}");
    // Offline, the verdicts not cached: every cell compiles again against
    // the kept crates, and cargo is never asked for them.
    let begun = Instant::now();
    let (status, stdout, stderr) = aula(&args, cache.path(), &[("CARGO_NET_OFFLINE", "true")]);
    let warm = begun.elapsed();
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    assert_all_pass(&stdout, &stderr);
    assert_eq!(sets(cache.path()), first, "the set was built again");
    eprintln!("tokio lesson: first run {cold:.1?}, second run {warm:.1?}");
}

#[test]
fn a_crate_that_cannot_be_had_is_an_error_of_the_lesson_before_anything_runs() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lesson = dir.path().join("nosuch.md");
    std::fs::write(
        &lesson,
        "# L\n\n```rust\n:dep aula-no-such-crate-7f3a = \"1\"\nprintln!(\"ran\");\n```\n\n\
         ```rust,server,exercise=e\nprintln!(\"server ran\");\n```\n\n\
         ```rust,client,exercise=e\n```\n",
    )
    .unwrap();
    let path = lesson.to_str().unwrap();
    let (status, stdout, stderr) = aula(&["run", "--format", "json", path], cache.path(), &[]);
    assert_eq!(status, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{path}:4: `:dep aula-no-such-crate-7f3a` could not be fetched or built; cargo says:"
        )),
        "{stderr}"
    );
    // cargo's own words follow (online: no such package; offline: no index).
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(stdout.is_empty(), "something ran: {stdout}");

    // Other evcxr commands are errors of the lesson, without a build.
    std::fs::write(&lesson, "# L\n\n```rust\n:vars\n```\n").unwrap();
    let (status, _, stderr) = aula(&["run", path], cache.path(), &[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{path}:4: `:vars` is an evcxr command aula does not run"
        )),
        "{stderr}"
    );
}

#[test]
fn grading_links_the_references_crates_and_never_reads_a_students_dep_lines() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let grades = out.path().join("grades");
    let (status, stdout, stderr) = aula(
        &[
            "grade",
            "tests/fixtures/crates/tokio.md",
            "tests/fixtures/crates/subs",
            "--out",
            grades.to_str().unwrap(),
        ],
        cache.path(),
        &[],
    );
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(grades.join("grades.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "student,status,score,max_score,eco-tokio", "{csv}");
    // Ana's tokio server and client pass every check. Bia's plain cell asks
    // for a crate that cannot be fetched: it is never read, and her server,
    // which takes one read for one line, fails the server check on the
    // hidden client whose bytes come one at a time; her client passes.
    assert!(rows.contains(&"ana,graded,1,1,1"), "{csv}\n{stderr}");
    assert!(rows.contains(&"bia,graded,0.5,1,0.5"), "{csv}\n{stderr}");
    let feedback = std::fs::read_to_string(grades.join("feedback/bia.md")).unwrap();
    assert!(
        feedback.contains("hidden test 1 (bytes split into pieces of 1): `mismatch`"),
        "{feedback}"
    );
    // Built in the batch's own folder, not taken from the cache an earlier,
    // unconfined run may have written.
    assert!(sets(cache.path()).is_empty());
}

#[test]
fn student_copies_and_notebooks_keep_dep_lines_as_evcxr_writes_them() {
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let lesson = "tests/fixtures/crates/tokio.md";
    let (status, _, stderr) = aula(
        &["student", lesson, "--out", out.path().to_str().unwrap()],
        cache.path(),
        &[],
    );
    assert_eq!(status, Some(0), "{stderr}");
    let copy = std::fs::read_to_string(out.path().join("tokio.md")).unwrap();
    assert!(copy.contains("\n:dep tokio = { version = \"1\""), "{copy}");
    let notebook = out.path().join("tokio.ipynb");
    let (status, _, stderr) = aula(
        &[
            "convert",
            lesson,
            "--to",
            "ipynb",
            "--out",
            notebook.to_str().unwrap(),
        ],
        cache.path(),
        &[],
    );
    assert_eq!(status, Some(0), "{stderr}");
    let nb: Value = serde_json::from_str(&std::fs::read_to_string(&notebook).unwrap()).unwrap();
    let first_code = nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cell_type"] == "code")
        .unwrap();
    let source: String = first_code["source"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        source.starts_with(":dep tokio = { version = \"1\""),
        "{source}"
    );
}
