//! `aula grade` (GRADE-FORMAT.md) on a reference and a batch of
//! submissions under `tests/fixtures/grade/`, hostile ones included: the
//! real binary, with its sandbox, as CI runs it (root, a machine like this).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

mod support;

/// Batches start evcxr contexts: one at a time on a small machine.
static EVCXR: Mutex<()> = Mutex::new(());

const MARKER: &str = "MARCADOR-DA-REFERENCIA";
const HIDDEN_INPUT: &str = "zebra-secreta";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> PathBuf {
    root().join("tests/fixtures/grade/eco.md")
}

fn aula(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(args)
        .current_dir(dir)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap()
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// `grades.json` of the batch written to `out`.
fn grades_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("grades.json")).unwrap()).unwrap()
}

/// One student's entry of `grades.json`.
fn student_in(json: &serde_json::Value, name: &str) -> serde_json::Value {
    json["students"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["student"] == name)
        .unwrap()
        .clone()
}

/// A submission whose server looks for the reference's marker wherever the
/// grader's processes point (their command lines, relative to their working
/// folders, and the reference's own path) and answers with what it finds.
fn mallory(reference: &Path) -> String {
    format!(
        r#"# Mallory's copy

```rust,server,exercise=shout
use std::io::{{BufRead, BufReader, Write}};
let mut candidates = vec![String::from({reference:?})];
if let Ok(procs) = std::fs::read_dir("/proc") {{
    for p in procs.flatten() {{
        if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {{
            for arg in cmd.split(|b| *b == 0) {{
                let arg = String::from_utf8_lossy(arg).into_owned();
                candidates.push(p.path().join("cwd").join(&arg).display().to_string());
                candidates.push(arg);
            }}
        }}
    }}
}}
let mut found = String::new();
for c in &candidates {{
    if let Ok(text) = std::fs::read_to_string(c) {{
        for line in text.lines().filter(|l| l.contains("{MARKER}")) {{
            found = line.to_owned();
        }}
    }}
}}
let listener = std::net::TcpListener::bind((HOST, PORT))?;
for _ in 0..2 {{
    let (stream, _) = listener.accept()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let reply = if found.is_empty() {{ shout(&line) }} else {{ format!("{{found}}\n") }};
    (&stream).write_all(reply.as_bytes())?;
}}
println!("served 2");
```
"#
    )
}

/// The fixtures' submissions and Mallory's, in a folder of the test's own.
fn batch(tmp: &Path) -> PathBuf {
    let subs = tmp.join("subs");
    copy_dir(&root().join("tests/fixtures/grade/subs"), &subs);
    std::fs::write(subs.join("mallory.md"), mallory(&reference())).unwrap();
    subs
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_batch_gets_the_exact_gradebook_and_nothing_secret_or_hostile_gets_out() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let subs = batch(tmp.path());
    let out = tmp.path().join("grades");
    let r = reference();
    let junit = out.join("junit.xml");
    let ran = aula(
        &[
            "grade",
            r.to_str().unwrap(),
            subs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(0), "{stdout}\n{stderr}");
    // The reference's halves are compiled once for the whole batch.
    assert!(
        stderr.contains("compiled 5 of the reference's 5 halves once for the batch"),
        "{stderr}"
    );

    // Right servers and clients written otherwise than the reference pass;
    // each wrong side loses its share alone; missing sides are `missing`;
    // an unreadable file is `invalid`; hostile code gains nothing.
    let csv = std::fs::read_to_string(out.join("grades.csv")).unwrap();
    assert_eq!(
        csv,
        "student,status,score,max_score,shout,udp\n\
         ana,graded,3,3,2,1\n\
         bruno,graded,2,3,1,1\n\
         carla,graded,1,3,1,0\n\
         davi,graded,0,3,0,0\n\
         eva,graded,1,3,1,0\n\
         fabio,graded,0,3,0,0\n\
         gabi,graded,1,3,1,0\n\
         hugo,invalid,0,3,0,0\n\
         ines,graded,3,3,2,1\n\
         mallory,graded,1,3,1,0\n\
         oscar,graded,0,3,0,0\n\
         paulo,graded,0,3,0,0\n\
         quinn,graded,0,3,0,0\n"
    );
    let json = grades_json(&out);
    let student = |name: &str| student_in(&json, name);
    let check = |name: &str, ex: &str, check: &str| {
        let s = student(name);
        let e = s["exercises"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == ex)
            .unwrap()
            .clone();
        e["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check)
            .unwrap()
            .clone()
    };
    assert_eq!(json["summary"]["students"], 13);
    assert_eq!(json["summary"]["graded"], 12);

    // A compile error points at the student's own file and line.
    let davi = subs.join("davi.md");
    let line = line_of(&davi, "&mut linha");
    let compiler = check("davi", "shout", "server")["compiler"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(compiler.contains(&format!("davi.md:{line}:")), "{compiler}");
    assert_eq!(check("davi", "shout", "client")["verdict"], "missing");

    // A client that prints the answer without sending anything fails, on
    // the reference server's own output.
    assert_eq!(check("carla", "shout", "client")["verdict"], "mismatch");
    assert_eq!(check("eva", "shout", "server")["verdict"], "timeout");
    assert_eq!(check("fabio", "udp", "client")["verdict"], "output_limit");
    let refused = check("paulo", "udp", "client");
    assert_eq!(refused["verdict"], "compile_error");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("include_str!")
    );
    assert_eq!(student("hugo")["status"], "invalid");
    assert!(
        student("hugo")["errors"][0]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );

    // Processes are bounded per cell, memory too, and none outlives the batch.
    let quinn = check("quinn", "udp", "client");
    assert_eq!(quinn["verdict"], "mismatch", "{quinn}");
    let diff = quinn["diff"].as_str().unwrap();
    assert!(diff.contains("+no memory"), "{diff}");
    let started: usize = diff
        .lines()
        .find_map(|l| l.strip_prefix("+started "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(started < 200, "{started} processes started");
    assert_eq!(support::processes_with_arg("31.4159"), 0);

    // Hidden tests appear by number only; the reference's marker, what the
    // hidden client sends, and /etc/passwd appear nowhere.
    let bruno = check("bruno", "shout", "server");
    assert!(
        bruno["message"].as_str().unwrap().contains("hidden test 1"),
        "{bruno}"
    );
    let everything = format!("{}{stdout}{stderr}", support::all_text(&out));
    for secret in [MARKER, HIDDEN_INPUT, "ZEBRA", "root:x:0:0"] {
        assert!(!everything.contains(secret), "`{secret}` got out");
    }
    let feedback = std::fs::read_to_string(out.join("feedback/bruno.md")).unwrap();
    assert!(feedback.contains("hidden test 1"), "{feedback}");
    // The lesson by its file name; the instructor's folders nowhere.
    assert!(
        feedback.starts_with("# Feedback for bruno: eco.md\n"),
        "{feedback}"
    );
    let folder = reference().parent().unwrap().to_string_lossy().into_owned();
    assert!(!feedback.contains(&folder), "{feedback}");
    assert!(feedback.contains("read_line"), "the hint: {feedback}");
    assert!(
        stdout.contains("ana") && stdout.contains("grades.csv"),
        "{stdout}"
    );

    // JUnit: a suite per student, a case per check, failures typed by verdict.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let checks: usize = json["students"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["exercises"].as_array().unwrap())
        .map(|e| e["checks"].as_array().unwrap().len())
        .sum();
    assert_eq!(xml.matches("<testcase ").count(), checks + 1, "{xml}");
    assert_eq!(xml.matches("<testsuite ").count(), 13);
    assert!(xml.contains("name=\"davi::shout::server\""), "{xml}");
    assert!(xml.contains("type=\"compile_error\""));
    assert!(xml.contains("name=\"hugo::(submission)\""));

    // The same batch again gives byte-identical grades.
    let again = tmp.path().join("again");
    let ran = aula(
        &[
            "grade",
            r.to_str().unwrap(),
            subs.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(ran.status.code(), Some(0));
    for file in ["grades.csv", "grades.json"] {
        let (first, second) = (
            std::fs::read_to_string(out.join(file)).unwrap(),
            std::fs::read_to_string(again.join(file)).unwrap(),
        );
        let differing = first
            .lines()
            .zip(second.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b);
        assert!(
            first == second,
            "{file} differs between two gradings, first at line {differing:?}"
        );
    }
}

/// `aula grade` that must end within `limit`: killed and failed otherwise,
/// so a grader that blocks (on a FIFO, say) fails the test, not hangs it.
fn aula_within(args: &[&str], dir: &Path, limit: std::time::Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(args)
        .current_dir(dir)
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "aula grade still ran after {limit:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// The hostile fixtures, and what cannot be kept in git made beside them:
/// a link to the reference, a student folder holding a link to a
/// classmate's file, a sparse 100 MiB file, a FIFO.
fn hostile_batch(tmp: &Path) -> PathBuf {
    let subs = tmp.join("hostile");
    copy_dir(&root().join("tests/fixtures/grade/hostile"), &subs);
    std::os::unix::fs::symlink(reference(), subs.join("lia.md")).unwrap();
    std::os::unix::fs::symlink("../rita.md", subs.join("nina/colega.md")).unwrap();
    let big = std::fs::File::create(subs.join("big.md")).unwrap();
    big.set_len(100 << 20).unwrap();
    let fifo = subs.join("fifo.md");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, 0o600.into()).unwrap();
    subs
}

/// The text of Markdown outside code blocks, and the code blocks' text, as
/// a CommonMark reader sees them.
fn read_markdown(md: &str) -> (String, Vec<String>) {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let (mut prose, mut blocks, mut inside) = (String::new(), Vec::new(), false);
    for event in Parser::new(md) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => {
                inside = true;
                blocks.push(String::new());
            }
            Event::End(TagEnd::CodeBlock) => inside = false,
            Event::Text(t) if inside => blocks.last_mut().unwrap().push_str(&t),
            Event::Text(t) | Event::Code(t) => prose.push_str(&t),
            Event::Start(Tag::Heading { .. }) => prose.push_str("\n# "),
            _ => {}
        }
    }
    (prose, blocks)
}

#[test]
fn hostile_inputs_are_invalid_or_harmless_and_hidden_input_never_gets_out() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let subs = hostile_batch(tmp.path());
    let out = tmp.path().join("grades");
    let r = reference();
    let junit = out.join("junit.xml");
    let args = [
        "grade",
        r.to_str().unwrap(),
        subs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    let started = std::time::Instant::now();
    let ran = aula_within(&args, tmp.path(), std::time::Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(0), "{stdout}\n{stderr}");
    eprintln!("hostile batch graded in {:?}", started.elapsed());

    // Links, the 100 MiB file and the FIFO are `invalid`, unread; Nina's
    // own copy is right, but her folder holds a link; a formula is a name.
    let csv = std::fs::read_to_string(out.join("grades.csv")).unwrap();
    assert_eq!(
        csv,
        "student,status,score,max_score,shout,udp\n\
         '=1+1,graded,0,3,0,0\n\
         big,invalid,0,3,0,0\n\
         fifo,invalid,0,3,0,0\n\
         lia,invalid,0,3,0,0\n\
         nina,invalid,0,3,0,0\n\
         rita,graded,1,3,1,0\n\
         tiago,graded,0,3,0,0\n"
    );
    let json = grades_json(&out);
    let student = |name: &str| student_in(&json, name);
    let errors = |name: &str| -> Vec<String> {
        let s = student(name);
        s["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    };
    let at = |name: &str| subs.join(name).display().to_string();
    assert_eq!(
        errors("lia"),
        vec![format!(
            "{} is a symbolic link (to {}), and links are never followed: hand in the file itself",
            at("lia.md"),
            r.display()
        )]
    );
    assert_eq!(
        errors("nina"),
        vec![format!(
            "{} holds a symbolic link, colega.md (to ../rita.md), and links are never followed: \
             hand in the files themselves",
            at("nina")
        )]
    );
    assert_eq!(
        errors("big"),
        vec![format!(
            "{} is 100 MiB, more than the 8 MiB a submission may have (--max-submission-size), \
             so it was not read",
            at("big.md")
        )]
    );
    assert_eq!(
        errors("fifo"),
        vec![format!(
            "{} is not a regular file (it is a FIFO), so it was not read",
            at("fifo.md")
        )]
    );
    assert_eq!(student("=1+1")["student"], "=1+1", "JSON keeps the name");
    let nina = std::fs::read_to_string(out.join("feedback/nina.md")).unwrap();
    assert!(nina.contains("colega.md (to ../rita.md)"), "{nina}");

    // Rita's server panicked with the hidden input, and printed it: her
    // check says which verdict, and nothing of what it said.
    let rita = &student("rita")["exercises"][0]["checks"];
    assert_eq!(rita[0]["verdict"], "panic", "{rita}");
    assert_eq!(
        rita[0]["message"],
        "the server (rita.md:6) did not pass (panic); what it printed or said is not shown, \
         since hidden tests ran alongside it"
    );
    assert_eq!(rita[0]["diff"], serde_json::Value::Null, "{rita}");
    assert_eq!(rita[1]["verdict"], "pass", "{rita}");
    let everything = format!("{}{stdout}{stderr}", support::all_text(&out));
    for secret in [MARKER, HIDDEN_INPUT, "ZEBRA", "stderr: ", "stdout: "] {
        assert!(!everything.contains(secret), "`{secret}` got out");
    }

    // Tiago's compiler error holds a fence: it stays in its block, and the
    // score he wrote into it is no heading of the feedback.
    let tiago = std::fs::read_to_string(out.join("feedback/tiago.md")).unwrap();
    let (prose, blocks) = read_markdown(&tiago);
    assert!(!prose.contains("FORJADA"), "{tiago}");
    assert_eq!(prose.matches("\n# ").count(), 3, "{prose}");
    assert!(
        blocks
            .iter()
            .any(|b| b.contains("```\n\n# Nota: 10 de 10 FORJADA")),
        "{blocks:?}"
    );
    assert!(
        tiago.contains("\n  ````text\n  error: udp client\n"),
        "{tiago}"
    );
}

#[test]
fn an_interrupted_batch_resumes_and_shards_merge_to_the_files_of_an_uninterrupted_one() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = root().join("tests/fixtures/grade/subs");
    let subs: Vec<String> = ["ana.md", "bruno.md", "davi.md", "gabi.md"]
        .iter()
        .map(|s| fixtures.join(s).display().to_string())
        .collect();
    let r = reference().display().to_string();
    let whole = tmp.path().join("whole");
    let mut args = vec!["grade", &r, "--out", whole.to_str().unwrap(), "-j", "1"];
    args.extend(subs.iter().map(String::as_str));
    assert_eq!(aula(&args, tmp.path()).status.code(), Some(0));

    // Interrupted once the first student is in the log.
    let part = tmp.path().join("part");
    let mut args = vec![
        "grade".to_owned(),
        r.clone(),
        "--out".into(),
        part.display().to_string(),
    ];
    args.extend(["-j".to_owned(), "1".to_owned()]);
    args.extend(subs.iter().cloned());
    let mut child = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(&args)
        .env("LANG", "en_US.UTF-8")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = part.join("grading-log.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let kept = std::fs::read_to_string(&log).unwrap().lines().count() - 1;
    assert!((1..4).contains(&kept), "{kept} students kept");
    assert!(!part.join("grades.csv").exists());

    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("--resume");
    let resumed = aula(&args, tmp.path());
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{kept} students were already graded")),
        "{stderr}"
    );
    for file in [
        "grades.csv",
        "grades.json",
        "feedback/ana.md",
        "feedback/davi.md",
    ] {
        assert_eq!(
            std::fs::read_to_string(whole.join(file)).unwrap(),
            std::fs::read_to_string(part.join(file)).unwrap(),
            "{file}"
        );
    }

    // Two shards graded at once, then merged, give the whole batch's files.
    let shards: Vec<(PathBuf, std::process::Child)> = ["slice:1/2", "slice:2/2"]
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let dir = tmp.path().join(format!("shard{n}"));
            let child = Command::new(env!("CARGO_BIN_EXE_aula"))
                .args(["grade", &r, "--out", dir.to_str().unwrap(), "-j", "1"])
                .args(["--partition", p])
                .args(&subs)
                .env("LANG", "en_US.UTF-8")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (dir, child)
        })
        .collect();
    let mut dirs = Vec::new();
    for (dir, mut child) in shards {
        assert_eq!(child.wait().unwrap().code(), Some(0));
        dirs.push(dir.display().to_string());
    }
    let shard_csv = std::fs::read_to_string(tmp.path().join("shard0/grades.csv")).unwrap();
    assert_eq!(shard_csv.lines().count(), 3, "{shard_csv}");
    let merged = tmp.path().join("merged");
    let junit = tmp.path().join("merged.xml");
    let mut args = vec!["merge", "--grades", "--out", merged.to_str().unwrap()];
    args.extend(["--junit", junit.to_str().unwrap()]);
    args.extend(dirs.iter().map(String::as_str));
    let ran = aula(&args, tmp.path());
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    for file in [
        "grades.csv",
        "grades.json",
        "feedback/bruno.md",
        "feedback/gabi.md",
    ] {
        assert_eq!(
            std::fs::read_to_string(whole.join(file)).unwrap(),
            std::fs::read_to_string(merged.join(file)).unwrap(),
            "{file}"
        );
    }
    // The merged JUnit loads in a real consumer: a suite per student.
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
for suite in JUnitXml.fromfile(sys.argv[1]):
    print("suite", suite.name, suite.tests, suite.failures)
    for case in suite:
        for r in case.result:
            if isinstance(r, Failure):
                print("failure", case.name, r.type)
"#;
    if let Some(parsed) = support::python("junitparser", script, &[junit.to_str().unwrap()]) {
        assert_eq!(parsed.matches("suite ").count(), 4, "{parsed}");
        assert!(parsed.contains("suite ana 3 0"), "{parsed}");
        assert!(
            parsed.contains("failure davi::shout::server compile_error"),
            "{parsed}"
        );
        assert!(
            parsed.contains("failure gabi::shout::client missing"),
            "{parsed}"
        );
    }
    // Overlapping shards, or a missing one, are refused.
    let overlap = tmp.path().join("overlap");
    let o = overlap.to_str().unwrap();
    let ran = aula(
        &[
            "merge",
            "--grades",
            "--out",
            o,
            &dirs[0],
            whole.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("overlap"));
    let ran = aula(&["merge", "--grades", "--out", o, &dirs[0]], tmp.path());
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("a shard is missing"));
}

#[test]
fn an_unusable_reference_or_command_line_exits_2_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.md");
    std::fs::write(
        &plain,
        "```rust,server,exercise=x\n```\n\n```rust,client,exercise=x\n```\n",
    )
    .unwrap();
    let ana = root().join("tests/fixtures/grade/subs/ana.md");
    let cases: Vec<Vec<String>> = vec![
        vec![
            "grade".into(),
            plain.display().to_string(),
            ana.display().to_string(),
        ],
        vec![
            "grade".into(),
            root()
                .join("tests/fixtures/malformed")
                .display()
                .to_string(),
            ana.display().to_string(),
        ],
        vec![
            "grade".into(),
            reference().display().to_string(),
            "no/such/submission.md".into(),
        ],
        vec!["grade".into(), reference().display().to_string()],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = aula(&args, tmp.path());
        assert_eq!(
            ran.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
    }
    assert!(!tmp.path().join("grades").exists());

    // A link named on the command line is not followed either: the
    // instructor is told to name the real folder.
    let subs = root().join("tests/fixtures/grade/subs");
    let link = tmp.path().join("latest");
    std::os::unix::fs::symlink(&subs, &link).unwrap();
    let ran = aula(
        &[
            "grade",
            reference().to_str().unwrap(),
            link.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(ran.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&ran.stderr),
        format!(
            "error: {} is a symbolic link (to {}); aula grade never follows links: \
             name the real file or folder\n",
            link.display(),
            subs.display()
        )
    );
    for bad in ["0", "8MB", "lots"] {
        let ran = aula(
            &[
                "grade",
                reference().to_str().unwrap(),
                subs.to_str().unwrap(),
            ]
            .into_iter()
            .chain(["--max-submission-size", bad])
            .collect::<Vec<_>>(),
            tmp.path(),
        );
        assert_eq!(ran.status.code(), Some(2), "--max-submission-size {bad}");
    }
    assert!(!tmp.path().join("grades").exists());
}

#[test]
fn a_confined_process_reads_only_what_its_rules_allow() {
    // aula confines itself when AULA_CONFINE names a rules file, as each
    // context's child does; `aula student` then reads a lesson or fails.
    let tmp = tempfile::tempdir().unwrap();
    let lesson = tmp.path().join("l.md");
    std::fs::write(&lesson, "# x\n").unwrap();
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    let exe = std::env::current_exe().unwrap();
    let rules = |read: Vec<PathBuf>| {
        let path = tmp.path().join("rules.json");
        let mut read = read;
        read.extend(["/usr", "/lib", "/lib64", "/etc"].map(PathBuf::from));
        read.push(PathBuf::from(env!("CARGO_BIN_EXE_aula")));
        read.push(exe.clone());
        let text = serde_json::json!({ "read": read, "write": [tmp.path().join("out")] });
        std::fs::write(&path, text.to_string()).unwrap();
        path
    };
    let student = |rules: &Path| {
        Command::new(env!("CARGO_BIN_EXE_aula"))
            .args(["student", lesson.to_str().unwrap(), "--out"])
            .arg(tmp.path().join("out"))
            .env("AULA_CONFINE", rules)
            .output()
            .unwrap()
    };
    let denied = student(&rules(Vec::new()));
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    let allowed = student(&rules(vec![lesson.clone()]));
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    // A rules file that cannot be read confines nothing: the child refuses to run.
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{").unwrap();
    assert_eq!(student(&broken).status.code(), Some(125));
}
