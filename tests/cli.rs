//! Integration tests: the real `aula` binary, through evcxr, on fixture
//! lessons under `tests/fixtures/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

mod support;
use support::python;

/// Runs that start evcxr contexts go one at a time: on a small machine,
/// parallel compiles would only make each run slower and its timing noisier.
static EVCXR: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}")
}

/// The 1-based line of the first line of `path` that contains `needle`, so
/// tests do not hard-code line numbers of fixtures.
fn line_of(path: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in {path}"))
        + 1
}

/// A fluent description of one `aula` invocation.
struct Aula {
    args: Vec<String>,
    env: Vec<(String, String)>,
    starts_evcxr: bool,
}

struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Aula {
    fn run() -> Aula {
        Aula {
            args: vec!["run".into()],
            env: Vec::new(),
            starts_evcxr: true,
        }
    }

    fn arg(mut self, arg: impl Into<String>) -> Aula {
        self.args.push(arg.into());
        self
    }

    fn args_of(mut self, args: &[&str]) -> Aula {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn json(self) -> Aula {
        self.arg("--format").arg("json")
    }

    /// Runs another subcommand than `run`, with these arguments only.
    fn exec_with_args(mut self, args: &[&str]) -> Outcome {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self.exec()
    }

    fn env(mut self, key: &str, value: &str) -> Aula {
        self.env.push((key.into(), value.into()));
        self
    }

    /// For inputs rejected before anything compiles: no need to queue.
    fn without_evcxr(mut self) -> Aula {
        self.starts_evcxr = false;
        self
    }

    fn exec(self) -> Outcome {
        let _guard = self
            .starts_evcxr
            .then(|| EVCXR.lock().unwrap_or_else(|e| e.into_inner()));
        // Each run gets an empty result cache unless the test gives one, so
        // no test sees another's results.
        let fresh_cache = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_aula"))
            .args(&self.args)
            .env("AULA_CACHE_DIR", fresh_cache.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(root())
            .output()
            .expect("aula runs");
        Outcome {
            status: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
        }
    }
}

impl Outcome {
    fn status(&self, want: i32) -> &Self {
        assert_eq!(
            self.status, want,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// PIDs of processes whose command line has these arguments in a row.
fn processes_running(argv: &[&str]) -> Vec<u32> {
    let needle = argv.join("\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

/// The exercises of the report's first lesson, in report order.
fn exercise_ids(report: &Value) -> Vec<&str> {
    report["lessons"][0]["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect()
}

/// Asserts an exercise's verdict, and that its message says each of `says`.
fn expect(report: &Value, id: &str, verdict: &str, says: &[&str]) {
    let ex = exercise(report, id);
    assert_eq!(ex["verdict"], verdict, "{ex:#}");
    let message = ex["message"].as_str().unwrap_or_default();
    for s in says {
        assert!(message.contains(s), "{id}: `{message}` does not say `{s}`");
    }
}

fn exercise<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["lessons"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["exercises"].as_array().unwrap())
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no exercise {id} in {report:#}"))
}

#[test]
fn a_lesson_never_seen_passes_every_feature_of_the_format() {
    let out = Aula::run().arg(fixture("good.md")).json().exec();
    out.status(0);
    let report = out.json();
    let lesson = &report["lessons"][0];
    assert_eq!(lesson["path"], fixture("good.md"));
    let cell_lines: Vec<u64> = lesson["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        cell_lines,
        vec![
            line_of(&fixture("good.md"), "```rust") as u64,
            line_of(&fixture("good.md"), "println!(\"{} {}\", shout") as u64 - 1,
            line_of(&fixture("good.md"), "let words: Vec<&str> = vec!") as u64 - 1,
        ]
    );
    for id in ["tcp-helper", "udp6", "in-turn"] {
        let ex = exercise(&report, id);
        assert_eq!(ex["verdict"], "pass", "{ex:#}");
        assert!(ex.get("diff").is_none());
    }
    assert_eq!(
        exercise(&report, "in-turn")["line"],
        line_of(&fixture("good.md"), "exercise=in-turn,points=3")
    );
    assert_eq!(
        report["summary"],
        serde_json::json!({"exercises": 3, "passed": 3, "failed": 0, "score": 5, "max_score": 5})
    );
}

#[test]
fn every_broken_exercise_gets_its_own_verdict_and_the_run_goes_on() {
    let path = fixture("faults.md");
    let out = Aula::run().arg(&path).json().exec();
    out.status(1);
    let report = out.json();

    let cell = &report["lessons"][0]["cells"][0];
    assert_eq!(cell["verdict"], "mismatch");
    assert!(
        cell["diff"]
            .as_str()
            .unwrap()
            .contains("-two plus two is 5\n+two plus two is 4"),
        "{cell:#}"
    );

    let wrong = exercise(&report, "wrong-echo");
    assert_eq!(wrong["verdict"], "mismatch");
    assert_eq!(wrong["score"], 0);
    let diff = wrong["diff"].as_str().unwrap();
    assert!(diff.starts_with("--- expected\n+++ actual\n"), "{diff}");
    assert!(
        diff.contains("-Received Hello, world\n+Received Hello"),
        "{diff}"
    );
    // The line that matched through `[PORT]` is not shown as a difference.
    assert!(!diff.contains("-Connected to port"), "{diff}");

    let typo = exercise(&report, "client-typo");
    assert_eq!(typo["verdict"], "compile_error");
    let error = &typo["compile_errors"][0];
    assert_eq!(
        error["line"],
        line_of(&path, "let wrong: u32 = \"not a number\";")
    );
    assert_eq!(error["message"], "mismatched types");
    assert!(
        error["rendered"]
            .as_str()
            .unwrap()
            .contains(&format!("--> {path}:{}:", line_of(&path, "let wrong: u32"))),
        "{error:#}"
    );

    expect(
        &report,
        "silent-server",
        "timeout",
        &["were still running after 2 s"],
    );
    expect(
        &report,
        "never-binds",
        "not_listening",
        &["did not bind port"],
    );
    let at_line = format!("at line {}", line_of(&path, "numbers.first()"));
    expect(
        &report,
        "client-panics",
        "panic",
        &["client 1 (line", "the list of numbers is empty", &at_line],
    );
    expect(
        &report,
        "flood",
        "output_limit",
        &["client 1 (line", "more than 1048576 bytes"],
    );
    expect(
        &report,
        "server-aborts",
        "crashed",
        &["the server (line", "SIGABRT"],
    );

    // Protocol-looking output is compared like any other, and a process the
    // server left running does not outlive the run.
    assert_eq!(exercise(&report, "leaves-a-child")["verdict"], "pass");
    assert!(
        processes_running(&["sleep", "297"]).is_empty(),
        "a process started by a cell survived the run"
    );

    assert_eq!(exercise(&report, "healthy")["verdict"], "pass");
    assert_eq!(report["summary"]["passed"], 2);
    assert_eq!(report["summary"]["failed"], 7);
}

#[test]
fn the_human_report_shows_verdicts_diffs_and_lesson_lines_without_colour_in_a_pipe() {
    let path = fixture("faults.md");
    let out = Aula::run()
        .arg(&path)
        .arg("--exercise")
        .arg("wrong-echo")
        .arg("--exercise")
        .arg("client-typo")
        .exec();
    out.status(1);
    let text = &out.stdout;
    assert!(!text.contains('\u{1b}'), "colour in a pipe:\n{text}");
    assert!(text.contains("FAIL wrong-echo"), "{text}");
    assert!(text.contains("mismatch"), "{text}");
    assert!(text.contains("-Received Hello, world"), "{text}");
    let typo_line = line_of(&path, "let wrong: u32");
    assert!(text.contains(&format!("{path}:{typo_line}:")), "{text}");
    assert!(
        text.contains(&format!("{typo_line} | let wrong: u32 = \"not a number\";")),
        "{text}"
    );
    assert!(!text.contains("silent-server"), "filtered out:\n{text}");
    assert!(text.contains("2 exercises: 0 passed, 2 failed"), "{text}");
}

#[test]
fn the_course_lessons_pass() {
    let out = Aula::run().json().exec();
    out.status(0);
    let report = out.json();
    let exercises = report["summary"]["exercises"].as_u64().unwrap();
    assert!(exercises >= 9, "{report:#}");
    assert_eq!(report["summary"]["passed"].as_u64().unwrap(), exercises);
}

#[test]
fn malformed_lessons_exit_2_naming_file_and_line_before_anything_compiles() {
    let table = [
        (
            "typo.md",
            "typo.md:3: unknown attribute `serer` in a rust cell (did you mean `server`?)",
        ),
        (
            "client-without-server.md",
            "client-without-server.md:5: client of exercise `echo`, which has no server cell",
        ),
        (
            "two-servers.md",
            "two-servers.md:7: exercise `echo` has a second server cell; its server is at line 1",
        ),
        (
            "output-without-cell.md",
            "output-without-cell.md:3: an `output` block with no code cell before it",
        ),
        ("not-utf8.md", "not-utf8.md:3: the file is not valid UTF-8"),
        ("missing.md", "missing.md: no such file or folder"),
    ];
    for (file, want) in table {
        let out = Aula::run()
            .arg(fixture(&format!("malformed/{file}")))
            .without_evcxr()
            .exec();
        out.status(2);
        assert!(out.stderr.contains(want), "{file}: {}", out.stderr);
        assert!(
            out.stdout.is_empty(),
            "{file}: ran something: {}",
            out.stdout
        );
    }
}

#[test]
fn a_folder_with_one_malformed_lesson_runs_nothing_and_lists_every_error() {
    let out = Aula::run()
        .arg(fixture("malformed"))
        .arg(fixture("good.md"))
        .without_evcxr()
        .exec();
    out.status(2);
    assert_eq!(out.stderr.lines().count(), 5, "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn command_line_mistakes_exit_2() {
    let unknown = Aula::run()
        .arg(fixture("good.md"))
        .arg("--exercise")
        .arg("udp-6")
        .without_evcxr()
        .exec();
    unknown.status(2);
    assert!(
        unknown.stderr.contains("no exercise `udp-6`") && unknown.stderr.contains("`udp6`"),
        "{}",
        unknown.stderr
    );
    Aula::run()
        .arg("--format")
        .arg("xml")
        .without_evcxr()
        .exec()
        .status(2);
    let negative = Aula::run().arg("--grace=-1").without_evcxr().exec();
    negative.status(2);
    assert!(negative.stderr.contains("--grace"), "{}", negative.stderr);
    // Values that would overflow a duration or a size are refused, not wrapped.
    for (flag, value) in [
        ("--grace", "1e300"),
        ("--cell-timeout", "0"),
        ("--output-cap", "99999999999999999999"),
        ("--max-memory", "18446744073709551615"),
        ("--jobs", "0"),
    ] {
        let out = Aula::run()
            .arg(format!("{flag}={value}"))
            .without_evcxr()
            .exec();
        out.status(2);
        assert!(out.stderr.contains(flag), "{flag}: {}", out.stderr);
    }
}

#[test]
fn json_lists_only_the_selected_exercise() {
    let out = Aula::run()
        .arg(fixture("good.md"))
        .arg(fixture("faults.md"))
        .arg("--exercise")
        .arg("udp6")
        .json()
        .exec();
    out.status(0);
    let report = out.json();
    // The lesson without the chosen exercise is not run.
    assert_eq!(report["lessons"].as_array().unwrap().len(), 1, "{report:#}");
    let ids = exercise_ids(&report);
    assert_eq!(ids, vec!["udp6"]);
    assert_eq!(report["summary"]["exercises"], 1);
}

#[test]
fn colour_can_be_forced_and_no_color_wins() {
    let run = || {
        Aula::run()
            .arg(fixture("faults.md"))
            .arg("--exercise")
            .arg("wrong-echo")
            .env("CLICOLOR_FORCE", "1")
    };
    let forced = run().exec();
    forced.status(1);
    assert!(forced.stdout.contains("\u{1b}["), "{}", forced.stdout);
    let no_color = run().env("NO_COLOR", "1").exec();
    no_color.status(1);
    assert!(!no_color.stdout.contains('\u{1b}'), "{}", no_color.stdout);
}

#[test]
fn an_interrupted_run_stops_its_children_reports_what_finished_and_exits_non_zero() {
    use std::io::BufRead;
    let _guard = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["run", &fixture("interrupt.md")])
        .env("AULA_CACHE_DIR", cache.path())
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let wait = std::time::Duration::from_secs(180);
    while !seen.iter().any(|l: &String| l.contains("PASS quick")) {
        seen.push(rx.recv_timeout(wait).expect("the first exercise finishes"));
    }
    // Let the slow exercise start its server and the process it leaves behind.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while processes_running(&["sleep", "298"]).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !processes_running(&["sleep", "298"]).is_empty(),
        "the slow server never started"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "aula did not stop after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code, Some(130));
    seen.extend(rx.iter());
    let text = seen.join("\n");
    assert!(text.contains("1 exercises: 1 passed, 0 failed"), "{text}");
    assert!(!text.contains(" slow "), "{text}");
    assert!(
        processes_running(&["sleep", "298"]).is_empty(),
        "a process started by the interrupted exercise survived"
    );
}

#[test]
fn an_unchanged_rerun_comes_from_the_cache_and_a_change_runs_again() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let lesson = work.path().join("lesson.md");
    std::fs::copy(root().join(fixture("good.md")), &lesson).unwrap();
    let lesson = lesson.to_str().unwrap().to_owned();
    let cache_dir = cache.path().to_str().unwrap().to_owned();
    let run = || {
        Aula::run()
            .arg(&lesson)
            .json()
            .env("AULA_CACHE_DIR", &cache_dir)
    };
    let cached =
        |report: &Value, id: &str| exercise(report, id).get("cached") == Some(&Value::Bool(true));

    let first = run().exec();
    first.status(0);
    let first = first.json();
    assert!(
        ["tcp-helper", "udp6", "in-turn"]
            .iter()
            .all(|id| !cached(&first, id))
    );

    // The first run built the runtime library beside the results; a run
    // that starts no context builds nothing.
    let runtime = cache.path().join("runtime");
    assert!(runtime.is_dir());
    std::fs::remove_dir_all(&runtime).unwrap();
    let second = run().exec();
    second.status(0);
    let second = second.json();
    assert!(
        ["tcp-helper", "udp6", "in-turn"]
            .iter()
            .all(|id| cached(&second, id)),
        "{second:#}"
    );
    assert!(!runtime.exists());
    assert_eq!(second["summary"], first["summary"]);
    assert_eq!(second["lessons"][0]["cells"][0]["cached"], true);

    // A changed expectation is run again (and now fails); the rest stays cached.
    let text = std::fs::read_to_string(&lesson).unwrap();
    std::fs::write(
        &lesson,
        text.replace("datagram of 5 bytes", "datagram of 6 bytes"),
    )
    .unwrap();
    let third = run().exec();
    third.status(1);
    let third = third.json();
    assert!(!cached(&third, "udp6"));
    assert_eq!(exercise(&third, "udp6")["verdict"], "mismatch");
    assert!(cached(&third, "tcp-helper") && cached(&third, "in-turn"));

    let bypass = run().arg("--no-cache").exec();
    bypass.status(1);
    let bypass = bypass.json();
    assert!(
        ["tcp-helper", "udp6", "in-turn"]
            .iter()
            .all(|id| !cached(&bypass, id))
    );
}

#[test]
fn parallel_exercises_report_in_lesson_order() {
    let out = Aula::run()
        .arg(fixture("good.md"))
        .arg("--jobs")
        .arg("2")
        .json()
        .exec();
    out.status(0);
    let report = out.json();
    let ids = exercise_ids(&report);
    assert_eq!(ids, vec!["tcp-helper", "udp6", "in-turn"]);
}

#[test]
fn plain_cells_keep_exact_output_whatever_they_print() {
    let path = fixture("plain.md");
    let out = Aula::run().arg(&path).json().exec();
    out.status(1);
    let report = out.json();
    let lesson = &report["lessons"][0];
    let verdicts: Vec<(u64, &str)> = lesson["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["line"].as_u64().unwrap(), c["verdict"].as_str().unwrap()))
        .collect();
    let line = |needle| line_of(&path, needle) as u64 - 1;
    assert_eq!(
        verdicts,
        vec![
            (line("println!(\"EVCXR_EXECUTION_COMPLETE\");"), "pass"),
            (line("let total: u32"), "pass"),
            (line("let borrowed"), "pass"),
            (line("println!(\"after the flood"), "pass"),
        ]
    );
    // Cells without an output block that fail are reported all the same.
    let unchecked = lesson["unchecked_cell_failures"].as_array().unwrap();
    assert_eq!(unchecked.len(), 2, "{lesson:#}");
    assert_eq!(unchecked[0]["line"], line("let n: u32 = \"x\""));
    assert_eq!(unchecked[0]["verdict"], "panic");
    assert!(
        unchecked[0]["message"]
            .as_str()
            .unwrap()
            .contains("invalid digit found in string"),
        "{lesson:#}"
    );
    assert_eq!(unchecked[1]["verdict"], "output_limit");
}

#[test]
fn isolate_leaves_students_code_only_loopback() {
    let out = Aula::run()
        .arg(fixture("isolate.md"))
        .arg("--isolate")
        .json()
        .exec();
    if out.stderr.contains("warning: --isolate") {
        // No user namespaces on this machine: the run must still go on.
        // CI runs as root, which needs none: there the check must run.
        assert!(
            std::env::var("CI").is_err(),
            "--isolate must work where CI runs: {}",
            out.stderr
        );
        eprintln!("skipped the isolation check: {}", out.stderr);
        assert!(out.status == 0 || out.status == 1, "{}", out.stderr);
        return;
    }
    out.status(0);
    assert_eq!(exercise(&out.json(), "only-loopback")["verdict"], "pass");
}

#[test]
fn a_runner_that_cannot_start_evcxr_reports_each_exercise_and_still_finishes() {
    // Without cargo and rustc on PATH, evcxr cannot build anything.
    let empty = tempfile::tempdir().unwrap();
    let out = Aula::run()
        .arg(fixture("good.md"))
        .json()
        .env("PATH", empty.path().to_str().unwrap())
        .exec();
    out.status(1);
    let report = out.json();
    for id in ["tcp-helper", "udp6", "in-turn"] {
        expect(
            &report,
            id,
            "crashed",
            &["aula could not run this exercise"],
        );
    }
    let cells = report["lessons"][0]["cells"].as_array().unwrap();
    assert!(
        cells.iter().all(|c| c["verdict"] == "crashed"),
        "{report:#}"
    );
    assert_eq!(report["summary"]["failed"], 3);
}

#[test]
fn the_readme_example_lesson_passes() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("````markdown\n").expect("an example lesson") + "````markdown\n".len();
    let end = start + readme[start..].find("\n````").expect("its end");
    let dir = tempfile::tempdir().unwrap();
    let lesson = dir.path().join("example.md");
    std::fs::write(&lesson, &readme[start..end]).unwrap();
    let out = Aula::run().arg(lesson.to_str().unwrap()).json().exec();
    out.status(0);
    assert_eq!(out.json()["summary"]["passed"], 1);
}

#[test]
fn a_thread_left_by_one_client_does_not_reach_the_next() {
    let out = Aula::run().arg(fixture("clients.md")).json().exec();
    out.status(0);
    assert_eq!(exercise(&out.json(), "two-clients")["verdict"], "pass");
}

/// PIDs of processes whose environment holds `key=value`.
fn processes_with_env(key: &str, value: &str) -> Vec<u32> {
    let needle = format!("{key}={value}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// Waits, at most `limit`, until `done` holds.
fn wait_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    done()
}

#[test]
fn a_panic_inside_evcxr_is_that_exercises_crashed_verdict_and_the_next_passes() {
    let out = Aula::run()
        .arg(fixture("good.md"))
        .arg("--jobs")
        .arg("1")
        .env("AULA_TEST_PANIC_IN_EXERCISE", "udp6")
        .json()
        .exec();
    out.status(1);
    let report = out.json();
    expect(&report, "udp6", "crashed", &["evcxr panicked"]);
    assert_eq!(exercise(&report, "tcp-helper")["verdict"], "pass");
    assert_eq!(exercise(&report, "in-turn")["verdict"], "pass");
}

#[test]
fn json_lists_each_cell_of_an_exercise_and_names_the_failing_client() {
    let path = fixture("faults.md");
    let out = Aula::run()
        .arg(&path)
        .args_of(&["--exercise", "wrong-echo", "--exercise", "client-panics"])
        .json()
        .exec();
    out.status(1);
    let report = out.json();
    let wrong = exercise(&report, "wrong-echo");
    assert_eq!(
        wrong["name"],
        format!("{path}::wrong-echo"),
        "qualified name"
    );
    let cells = wrong["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{wrong:#}");
    assert_eq!(cells[0]["role"], "server");
    assert_eq!(cells[0]["line"], line_of(&path, "exercise=wrong-echo"));
    assert_eq!(cells[0]["verdict"], "pass");
    assert_eq!(cells[1]["role"], "client");
    assert_eq!(cells[1]["index"], 1);
    assert_eq!(cells[1]["verdict"], "mismatch");
    assert!(
        cells[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("client 1 (line"),
        "{wrong:#}"
    );
    assert!(
        cells[1]["diff"]
            .as_str()
            .unwrap()
            .contains("-Received Hello, world")
    );
    assert!(cells[1].get("hidden").is_none());

    let panics = exercise(&report, "client-panics");
    let cells = panics["cells"].as_array().unwrap();
    assert_eq!(cells[1]["verdict"], "panic", "{panics:#}");
    assert!(
        cells[1]["message"]
            .as_str()
            .unwrap()
            .contains("the list of numbers is empty")
    );
}

#[test]
fn prose_edits_keep_exercises_cached_and_one_change_starts_only_its_contexts() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let lesson = work.path().join("lesson.md");
    let original = std::fs::read_to_string(root().join(fixture("good.md"))).unwrap();
    std::fs::write(&lesson, &original).unwrap();
    let lesson = lesson.to_str().unwrap().to_owned();
    let run = |jobs: &str| {
        Aula::run()
            .arg(&lesson)
            .args_of(&["--jobs", jobs])
            .json()
            .env("AULA_CACHE_DIR", cache.path().to_str().unwrap())
            .exec()
    };
    let first = run("2");
    first.status(0);
    let first = first.json();

    // Two lines of prose above everything: nothing runs again, and lines move.
    std::fs::write(&lesson, format!("Some new prose.\n\n{original}")).unwrap();
    let second = run("2");
    second.status(0);
    let second = second.json();
    for id in ["tcp-helper", "udp6", "in-turn"] {
        let ex = exercise(&second, id);
        assert_eq!(ex["cached"], true, "{id} ran again after a prose edit");
        assert_eq!(
            ex["line"].as_u64().unwrap(),
            exercise(&first, id)["line"].as_u64().unwrap() + 2
        );
    }
    assert_eq!(second["lessons"][0]["cells"][0]["cached"], true);
    assert_eq!(second["runner"]["contexts_started"], 0);

    // One changed expectation with eight jobs: its server's and its
    // client's contexts start, not sixteen.
    let changed = format!("Some new prose.\n\n{original}")
        .replace("datagram of 5 bytes", "datagram of 6 bytes");
    std::fs::write(&lesson, changed).unwrap();
    let third = run("8");
    third.status(1);
    let third = third.json();
    assert_eq!(exercise(&third, "udp6")["verdict"], "mismatch");
    let started = third["runner"]["contexts_started"].as_u64().unwrap();
    assert!((1..=2).contains(&started), "{started} contexts started");
}

/// Kills aula mid-exercise with `signal`, and checks that nothing it started
/// is left: no context's child, no process a cell started. Returns aula's
/// exit status.
fn kill_mid_exercise(signal: &str, tmp: &std::path::Path) -> Option<i32> {
    let _guard = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["run", &fixture("interrupt.md"), "--exercise", "slow"])
        .env("AULA_CACHE_DIR", cache.path())
        .env("TMPDIR", tmp)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let started = wait_until(std::time::Duration::from_secs(120), || {
        !processes_running(&["sleep", "298"]).is_empty()
    });
    assert!(started, "the slow server never started");
    assert!(!processes_with_env("AULA_PARENT_PID", &pid).is_empty());
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let gone = wait_until(std::time::Duration::from_secs(5), || {
        processes_with_env("AULA_PARENT_PID", &pid).is_empty()
            && processes_running(&["sleep", "298"]).is_empty()
    });
    assert!(gone, "a process aula started outlived `kill {signal}`");
    code
}

fn scratch_folders(tmp: &std::path::Path) -> usize {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("aula-run-"))
        .count()
}

#[test]
fn after_kill_9_nothing_survives_and_the_next_run_removes_the_scratch_folder() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(kill_mid_exercise("-KILL", tmp.path()), None);
    assert_eq!(scratch_folders(tmp.path()), 1, "the dead run's folder");
    let lesson = tmp.path().join("empty.md");
    std::fs::write(&lesson, "# Nothing to run\n").unwrap();
    Aula::run()
        .arg(lesson.to_str().unwrap())
        .env("TMPDIR", tmp.path().to_str().unwrap())
        .without_evcxr()
        .exec()
        .status(0);
    assert_eq!(scratch_folders(tmp.path()), 0);
}

#[test]
fn a_hangup_stops_the_run_like_sigterm_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(kill_mid_exercise("-HUP", tmp.path()), Some(143));
    assert_eq!(scratch_folders(tmp.path()), 0);
}

#[test]
fn student_copies_of_the_course_compile_and_each_exercise_panics() {
    let out_dir = tempfile::tempdir().unwrap();
    let copies = out_dir.path().to_str().unwrap();
    let made = Aula::run()
        .without_evcxr()
        .exec_with_args(&["student", "lessons", "--out", copies]);
    made.status(0);
    let out = Aula::run().arg(copies).json().exec();
    out.status(1);
    let report = out.json();
    let mut with_regions = 0;
    for lesson in report["lessons"].as_array().unwrap() {
        for ex in lesson["exercises"].as_array().unwrap() {
            with_regions += 1;
            assert_eq!(ex["verdict"], "panic", "{ex:#}");
            assert!(
                ex["message"]
                    .as_str()
                    .unwrap()
                    .contains("not yet implemented"),
                "{ex:#}"
            );
            // Hidden clients are not in the copy.
            assert!(
                ex["cells"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c.get("hidden").is_none())
            );
        }
        // Plain cells are the reference's and still pass.
        assert!(
            lesson["cells"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["verdict"] == "pass"),
            "{lesson:#}"
        );
    }
    assert!(with_regions >= 9, "{with_regions} exercises");
}

#[test]
fn hints_are_printed_by_exercise_id() {
    let out = Aula::run()
        .without_evcxr()
        .exec_with_args(&["hint", "tcp-echo", "lessons"]);
    out.status(0);
    assert!(!out.stdout.trim().is_empty());
    let unknown = Aula::run()
        .without_evcxr()
        .exec_with_args(&["hint", "tcp-ecco", "lessons"]);
    unknown.status(2);
    assert!(
        unknown.stderr.contains("did you mean `tcp-echo`?"),
        "{}",
        unknown.stderr
    );
    // The lesson first, as `aula run` takes it, works too.
    let swapped =
        Aula::run()
            .without_evcxr()
            .exec_with_args(&["hint", "lessons/07-sockets.md", "tcp-echo"]);
    swapped.status(0);
    assert_eq!(swapped.stdout, out.stdout);
}

#[test]
fn junit_loads_in_a_real_consumer_and_github_gets_annotations_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let summary = dir.path().join("summary.md");
    let path = fixture("course/01-first.md");
    let out = Aula::run()
        .arg(&path)
        .arg("--junit")
        .arg(junit.to_str().unwrap())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .exec();
    out.status(1);
    let server_line = line_of(&path, "exercise=greet");
    assert!(
        out.stdout.contains(&format!(
            "::error file={path},line={server_line},title=greet%3A panic::"
        )),
        "{}",
        out.stdout
    );
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(table.contains("| greet | ❌ panic | 0/1 |"), "{table}");

    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print("suite", suite.name, suite.tests, suite.failures)
    for case in suite:
        for r in case.result:
            if isinstance(r, Failure):
                print("failure", case.name, r.type, "not yet implemented" in (r.text or ""))
"#;
    let Some(parsed) = python("junitparser", script, &[junit.to_str().unwrap()]) else {
        return;
    };
    assert!(parsed.contains(&format!("suite {path} 2 2")), "{parsed}");
    assert!(
        parsed.contains(&format!("failure {path}::greet panic True")),
        "{parsed}"
    );
}

/// A report without what differs between runs of the same code: timings,
/// cache marks, how many contexts started, and which shard it was.
fn comparable(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in ["duration_ms", "cached", "runner", "run"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn shards_run_in_parallel_merge_into_the_unsharded_report() {
    let lessons = [fixture("good.md"), fixture("clients.md")];
    let whole = Aula::run()
        .args_of(&[&lessons[0], &lessons[1]])
        .json()
        .exec();
    // Three runs at once on a small machine: shards compile slowly, which
    // no clock counts, but they also run slowly.
    whole.status(0);
    let whole = whole.json();

    let _guard = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<_> = (1..=3)
        .map(|m| {
            let cache = tempfile::tempdir().unwrap();
            let out = std::fs::File::create(dir.path().join(format!("shard{m}.json"))).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_aula"))
                .args([
                    "run",
                    &lessons[0],
                    &lessons[1],
                    "--jobs",
                    "1",
                    "--format",
                    "json",
                ])
                .args(["--partition", &format!("slice:{m}/3")])
                .env("AULA_CACHE_DIR", cache.path())
                .current_dir(root())
                .stdout(out)
                .spawn()
                .unwrap();
            (child, cache)
        })
        .collect();
    for (mut child, _cache) in shards {
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    let shard = |m: u32| {
        dir.path()
            .join(format!("shard{m}.json"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    // Each shard reports only its own units.
    let one: Value = serde_json::from_str(&std::fs::read_to_string(shard(1)).unwrap()).unwrap();
    assert_eq!(one["run"]["units"].as_array().unwrap().len(), 2, "{one:#}");

    let merge = |files: &[String]| {
        let mut args = vec!["merge".to_owned()];
        args.extend(files.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Aula::run().without_evcxr().exec_with_args(&args)
    };
    let merged = merge(&[shard(3), shard(1), shard(2)]);
    merged.status(0);
    assert_eq!(comparable(merged.json()), comparable(whole));

    let overlapping = merge(&[shard(1), shard(1), shard(2), shard(3)]);
    overlapping.status(2);
    assert!(
        overlapping.stderr.contains("overlap"),
        "{}",
        overlapping.stderr
    );
    let missing = merge(&[shard(1), shard(2)]);
    missing.status(2);
    assert!(missing.stderr.contains("missing"), "{}", missing.stderr);
}

#[test]
fn bless_rewrites_wrong_expectations_keeps_patterns_and_a_second_bless_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let lesson = work.path().join("lesson.md");
    let original = std::fs::read_to_string(root().join(fixture("good.md"))).unwrap();
    let extra = "\n```rust\nprintln!(\"a new cell\");\n```\n";
    let wrong = format!("{original}{extra}")
        .replace("datagram of 5 bytes", "datagram of 6 bytes")
        .replace("HELLO 42", "HELLO 41");
    std::fs::write(&lesson, &wrong).unwrap();
    let lesson = lesson.to_str().unwrap().to_owned();

    let blessed = Aula::run()
        .args_of(&[&lesson, "--bless", "--bless-new"])
        .exec();
    blessed.status(1);
    let said: Vec<&str> = blessed
        .stderr
        .lines()
        .filter(|l| l.starts_with("blessed the output of"))
        .collect();
    assert_eq!(said.len(), 3, "{}", blessed.stderr);
    // The expectations are back as they were, patterns included, and the
    // new cell has its output block; nothing else changed.
    let text = std::fs::read_to_string(&lesson).unwrap();
    assert_eq!(
        text,
        format!("{original}{extra}\n```output\na new cell\n```\n")
    );

    Aula::run().arg(&lesson).exec().status(0);
    let again = Aula::run().args_of(&[&lesson, "--bless"]).exec();
    again.status(0);
    assert!(!again.stderr.contains("blessed"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&lesson).unwrap(), text);
}

/// A standard library of its own layout, all empty: what rust-analyzer sees
/// on a machine without the `rust-src` component, as far as types go.
fn empty_std() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for krate in ["core", "alloc", "std"] {
        let src = dir.path().join(krate).join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("lib.rs"), "").unwrap();
    }
    dir
}

#[test]
fn a_kept_variable_is_typed_from_the_std_source_and_without_one_the_run_says_what_to_install() {
    let keeps = fixture("keeps.md");
    let std_src = root().join("tests/fixtures/std-src");
    // rust-analyzer types `greeting` from RUST_SRC_PATH's library; the
    // closure is not kept, and the cell runs all the same.
    Aula::run()
        .arg(&keeps)
        .env("RUST_SRC_PATH", std_src.to_str().unwrap())
        .exec()
        .status(0);

    // Without the source: one line that names the cell, the variable and
    // the fix, before anything compiles; never evcxr's `crashed`.
    let empty = empty_std();
    let line = line_of(&keeps, "```rust");
    for (lang, says) in [
        ("en_US.UTF-8", "this cell keeps the variable `greeting`"),
        ("pt_BR.UTF-8", "esta célula guarda a variável `greeting`"),
    ] {
        let out = Aula::run()
            .arg(&keeps)
            .env("RUST_SRC_PATH", empty.path().to_str().unwrap())
            .env("LANG", lang)
            .without_evcxr()
            .exec();
        out.status(2);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", out.stderr);
        assert!(
            lines[0].starts_with(&format!("{keeps}:{line}: {says}")),
            "{}",
            out.stderr
        );
        assert!(
            lines[0].contains("rustup component add rust-src"),
            "{}",
            out.stderr
        );
        let closure = line_of(&keeps, "let twice");
        assert!(
            lines[1].starts_with(&format!("{keeps}:{}:", closure - 1))
                && lines[1].contains("`twice`"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty() && !out.stderr.contains("crashed"));
    }
}

/// What a user's umask makes of a new file, for student copies (shared in
/// a course folder) and the same file written again (its mode is kept).
#[test]
fn student_copies_get_the_mode_the_umask_gives_and_a_rewrite_keeps_it() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    let lesson = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lessons/00-aula.md");
    for (mask, mode) in [(0o022, 0o644), (0o077, 0o600)] {
        let out = tempfile::tempdir().unwrap();
        let student = || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_aula"));
            command
                .arg("student")
                .arg(&lesson)
                .arg("--out")
                .arg(out.path());
            // SAFETY: umask is async-signal-safe and allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
            assert!(command.status().unwrap().success());
        };
        student();
        let copy = out.path().join("00-aula.md");
        let got = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "umask {mask:o}");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o640)).unwrap();
        student();
        let kept = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(kept, 0o640, "umask {mask:o}, written again");
    }
}
