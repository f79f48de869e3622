//! Real servers (LESSON-FORMAT 1.2): servers that loop and are stopped as
//! soon as they only wait, clients at once (`concurrent`), and faults on the
//! wire (`wire=`), in `aula run` and `aula grade`, on the fixtures under
//! `tests/fixtures/servers/`. Each feature has a server that passes and one
//! that fails for the reason the feature exists.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;

/// Runs start evcxr contexts: one at a time on a small machine.
static EVCXR: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `aula ARGS` from the project's root with an empty result cache, in
/// English; its JSON report when it printed one, and its output.
fn aula(args: &[&str]) -> (Option<i32>, String, String) {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(args)
        .env("AULA_CACHE_DIR", cache.path())
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .current_dir(root())
        .output()
        .expect("aula runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON report of `aula run --format json LESSON EXTRA...`.
fn report(lesson: &str, extra: &[&str]) -> Value {
    let path = format!("tests/fixtures/servers/{lesson}");
    let mut args = vec!["run", "--format", "json", path.as_str()];
    args.extend(extra);
    let (_, stdout, stderr) = aula(&args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"))
}

fn exercise<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["lessons"][0]["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no exercise {id} in {report:#}"))
}

/// The cell of an exercise in `role` (`server`, or `client` with its
/// 1-based index).
fn cell<'a>(ex: &'a Value, role: &str, index: Option<u64>) -> &'a Value {
    ex["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == role && (index.is_none() || c["index"] == index.unwrap()))
        .unwrap_or_else(|| panic!("no {role} {index:?} in {ex:#}"))
}

#[test]
fn a_server_only_waiting_is_stopped_at_once_and_one_still_busy_keeps_its_grace() {
    // A grace of 30 s: were servers that only wait given all of it, the
    // two that loop would hold the run for a minute.
    let begun = Instant::now();
    let r = report("idle.md", &["--grace", "30"]);
    let took = begun.elapsed();
    for id in ["eco-em-laco", "udp-em-laco", "ainda-ocupado"] {
        assert_eq!(exercise(&r, id)["verdict"], "pass", "{id}: {r:#}");
    }
    assert!(
        took < Duration::from_secs(25),
        "servers that only waited were waited for: {took:?}"
    );
}

#[test]
fn concurrent_clients_tell_a_server_of_one_connection_at_a_time_from_a_threaded_one() {
    let r = report("concurrent.md", &[]);
    let one_at_a_time = exercise(&r, "um-de-cada-vez");
    assert_eq!(one_at_a_time["verdict"], "mismatch", "{r:#}");
    // The client that held its connection got its answer; the one behind
    // it did not, within its read timeout.
    assert_eq!(cell(one_at_a_time, "client", Some(1))["verdict"], "pass");
    let second = cell(one_at_a_time, "client", Some(2));
    assert!(
        second["diff"]
            .as_str()
            .unwrap()
            .contains("+sem resposta a tempo"),
        "{second:#}"
    );
    assert_eq!(exercise(&r, "com-threads")["verdict"], "pass", "{r:#}");
}

#[test]
fn bytes_split_on_the_wire_fail_a_single_read_and_datagrams_are_lost_doubled_and_swapped() {
    let r = report("wire.md", &["--trace"]);
    let single = exercise(&r, "um-read-so");
    assert_eq!(single["verdict"], "mismatch", "{r:#}");
    let server = cell(single, "server", None);
    assert!(
        server["diff"].as_str().unwrap().contains("+recebi \"o\""),
        "one read got one piece, the first byte: {server:#}"
    );
    let client = cell(single, "client", Some(1));
    assert_eq!(client["wire"], serde_json::json!(["split:1"]));
    assert!(
        client["message"]
            .as_str()
            .unwrap()
            .contains("bytes split into pieces of 1"),
        "{client:#}"
    );

    // The trace shows the pieces the server was given, one byte each: the
    // first is all its one read took, and all it sent back.
    let wire = single["wire"].as_array().expect("--trace records the wire");
    let chunks = wire[0]["chunks"].as_array().unwrap();
    let sent: Vec<&Value> = chunks.iter().filter(|c| c["from"] == "client").collect();
    assert!(sent.iter().all(|c| c["bytes"] == 1), "{wire:#?}");
    assert_eq!(sent[0]["text"], "o", "{wire:#?}");
    let answer = chunks.iter().find(|c| c["from"] == "server").unwrap();
    assert_eq!(answer["text"], "o", "{wire:#?}");

    // Read to the line's end, each piece held 5 ms: it passes.
    assert_eq!(exercise(&r, "ate-o-fim")["verdict"], "pass", "{r:#}");

    // drop:4+swap:2+dup:3 on 1 2 3 4 fim: the server read 1 3 3 2 fim.
    // (A passing exercise has no trace in the report; the capture of
    // `pcap_writes_...` shows these datagrams, the dropped one marked.)
    assert_eq!(exercise(&r, "datagramas")["verdict"], "pass", "{r:#}");
}

#[test]
fn a_hidden_client_under_faults_grades_by_them_and_says_so_without_its_input() {
    let dir = root().join("tests/fixtures/servers/grade");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("grades");
    let (status, stdout, stderr) = aula(&[
        "grade",
        dir.join("linhas.md").to_str().unwrap(),
        dir.join("subs").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(out.join("grades.csv")).unwrap();
    assert_eq!(
        csv,
        "student,status,score,max_score,linhas\nlia,graded,2,2,2\nrui,graded,0,2,0\n"
    );
    let feedback = std::fs::read_to_string(out.join("feedback/rui.md")).unwrap();
    assert!(
        feedback.contains("hidden test 1 (bytes split into pieces of 1): `mismatch`"),
        "{feedback}"
    );
    let everything = format!("{}{stdout}{stderr}", support::all_text(&out));
    assert!(
        !everything.contains("girafa-escondida"),
        "the hidden client's input got out"
    );
}

/// Guards the fixtures' own claim: without `concurrent`, the server of one
/// connection at a time passes (its clients then take turns).
#[test]
fn without_concurrent_the_same_clients_take_turns_and_pass() {
    let text = std::fs::read_to_string(root().join("tests/fixtures/servers/concurrent.md"))
        .unwrap()
        .replace(",concurrent", "");
    let tmp = tempfile::tempdir().unwrap();
    let lesson = tmp.path().join("turns.md");
    std::fs::write(&lesson, text).unwrap();
    let (_, stdout, stderr) = aula(&[
        "run",
        "--format",
        "json",
        lesson.to_str().unwrap(),
        "--exercise",
        "um-de-cada-vez",
    ]);
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(exercise(&r, "um-de-cada-vez")["verdict"], "pass", "{r:#}");
}

/// `tshark -r FILE -T fields -e ...`: one line a packet, fields by tabs.
/// `None` where tshark is missing outside CI (`.ci/run` installs it, and
/// there a missing one fails the test).
fn tshark(file: &std::path::Path, fields: &[&str]) -> Option<Vec<Vec<String>>> {
    let mut args = vec!["-r".to_owned(), file.display().to_string(), "-n".into()];
    args.extend(["-T", "fields"].map(String::from));
    for f in fields {
        args.extend(["-e".to_owned(), (*f).to_owned()]);
    }
    let Ok(out) = Command::new("tshark").args(&args).output() else {
        assert!(std::env::var("CI").is_err(), "tshark is needed in CI");
        eprintln!("skipped: tshark is not installed");
        return None;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect(),
    )
}

#[test]
fn pcap_writes_each_exercise_as_a_capture_tshark_reads_with_the_same_bytes_and_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("caps");
    let (_, stdout, stderr) = aula(&[
        "run",
        "tests/fixtures/servers/wire.md",
        "--pcap",
        dir.to_str().unwrap(),
    ]);
    let names: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // Passing exercises too: a capture is for looking at what went.
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "wire-ate-o-fim.pcapng",
            "wire-datagramas.pcapng",
            "wire-um-read-so.pcapng"
        ]
    );
    let fields = ["tcp.srcport", "tcp.dstport", "tcp.len", "tcp.payload"];
    let Some(packets) = tshark(&dir.join("wire-ate-o-fim.pcapng"), &fields) else {
        return;
    };
    // The client's pieces, one byte a segment, make the line it sent.
    let client_port = &packets[0][0];
    let data: Vec<&Vec<String>> = packets
        .iter()
        .filter(|p| &p[0] == client_port && p[2] != "0")
        .collect();
    assert_eq!(data.len(), "ola, mundo\n".len(), "{packets:?}");
    assert!(data.iter().all(|p| p[2] == "1"), "{packets:?}");
    let sent: String = data.iter().map(|p| p[3].clone()).collect();
    assert_eq!(hex_text(&sent), "ola, mundo\n");
    // The server's answer came back whole, to the client's port.
    let answer: Vec<&Vec<String>> = packets
        .iter()
        .filter(|p| &p[1] == client_port && p[2] != "0")
        .collect();
    assert_eq!(answer.len(), 1, "{packets:?}");
    assert_eq!(hex_text(&answer[0][3]), "ola, mundo\n");

    // UDP: the datagrams as the faults made them, each marked one with a
    // packet comment; the dropped one is there, and says the server never
    // got it.
    let udp = tshark(
        &dir.join("wire-datagramas.pcapng"),
        &["udp.payload", "frame.comment"],
    )
    .unwrap();
    let got: Vec<String> = udp.iter().map(|p| hex_text(&p[0])).collect();
    assert_eq!(got, ["1", "3", "3", "2", "4", "fim", "ok"]);
    let comment = |i: usize| udp[i].get(1).cloned().unwrap_or_default();
    assert!(comment(2).contains("a second copy"), "{udp:?}");
    assert!(comment(3).contains("held back"), "{udp:?}");
    assert!(comment(4).contains("the server never got it"), "{udp:?}");
    assert_eq!(comment(5), "", "{udp:?}");
}

/// Bytes written as hex (what tshark prints of a payload), as text.
fn hex_text(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// Issue 24: a student reads one language. On a Portuguese screen no
/// verdict identifier, diff header or fault is left in English.
#[test]
fn a_portuguese_screen_says_verdicts_diffs_and_faults_in_portuguese() {
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args([
            "run",
            "tests/fixtures/servers/wire.md",
            "--exercise",
            "um-read-so",
        ])
        .env("AULA_CACHE_DIR", cache.path())
        .env("LANG", "pt_BR.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .current_dir(root())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    for says in [
        "FALHA um-read-so",
        "saída diferente",
        "--- esperado",
        "+++ obtido",
        "o cliente 1 (linha 24, bytes divididos em pedaços de 1): saída diferente",
        // `de` joined to the article, as Portuguese writes it.
        "a saída do cliente 1 (linha 24, bytes divididos em pedaços de 1) e o servidor",
    ] {
        assert!(screen.contains(says), "`{says}` not in:\n{screen}");
    }
    for english in ["mismatch", "expected", "actual", "bytes split", "FAIL"] {
        assert!(!screen.contains(english), "`{english}` in:\n{screen}");
    }
}

/// Issue 21, part 1: one submission's grade as Gradescope's autograder
/// `results.json`, checked against the fields and types of Gradescope's
/// specification; a hidden test is shown once published, by its number
/// and verdict, never its input.
#[test]
fn gradescope_results_have_the_specifications_fields_and_keep_hidden_input_hidden() {
    let dir = root().join("tests/fixtures/servers/grade");
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    std::fs::copy(dir.join("subs/rui.md"), subs.join("rui.md")).unwrap();
    let results = tmp.path().join("results.json");
    let (status, stdout, stderr) = aula(&[
        "grade",
        dir.join("linhas.md").to_str().unwrap(),
        subs.to_str().unwrap(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
        "--gradescope",
        results.to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&results).unwrap();
    assert!(!text.contains("girafa-escondida"), "{text}");
    let r: Value = serde_json::from_str(&text).unwrap();
    assert!(
        r["score"].is_number() && r["execution_time"].is_number(),
        "{r:#}"
    );
    assert!(r["output"].is_string(), "{r:#}");
    let tests = r["tests"].as_array().unwrap();
    for t in tests {
        assert!(t["name"].is_string() && t["output"].is_string(), "{t:#}");
        assert!(
            t["score"].is_number() && t["max_score"].is_number(),
            "{t:#}"
        );
        assert!(["passed", "failed"].contains(&t["status"].as_str().unwrap()));
        let visibility = t["visibility"].as_str().unwrap();
        assert!(
            ["hidden", "after_due_date", "after_published", "visible"].contains(&visibility),
            "{t:#}"
        );
    }
    let server = tests
        .iter()
        .find(|t| t["name"] == "linhas: server")
        .unwrap();
    assert_eq!(
        (server["score"].as_f64(), server["max_score"].as_f64()),
        (Some(0.0), Some(2.0))
    );
    assert_eq!(server["status"], "failed");
    let hidden = tests
        .iter()
        .find(|t| t["visibility"] == "after_published")
        .expect("the hidden test");
    assert_eq!(
        hidden["name"],
        "linhas: server: hidden test 1 (bytes split into pieces of 1)"
    );
    assert_eq!(hidden["output"], "verdict: mismatch");

    // Two submissions: not one student's results, so none are written.
    std::fs::copy(dir.join("subs/lia.md"), subs.join("lia.md")).unwrap();
    std::fs::remove_file(&results).unwrap();
    let (_, _, stderr) = aula(&[
        "grade",
        dir.join("linhas.md").to_str().unwrap(),
        subs.to_str().unwrap(),
        "--out",
        tmp.path().join("out2").to_str().unwrap(),
        "--gradescope",
        results.to_str().unwrap(),
    ]);
    assert!(!results.exists());
    assert!(stderr.contains("this batch has 2"), "{stderr}");
}

#[test]
fn a_port_another_program_took_before_the_server_bound_it_is_tried_again_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let taker = {
        let dir = dir.path().to_path_buf();
        // Plays the other program: binds the server's port as soon as the
        // server has said which, and holds it until aula is done.
        std::thread::spawn(move || {
            let asked = dir.join("asked");
            let deadline = Instant::now() + Duration::from_secs(240);
            while !asked.exists() {
                assert!(Instant::now() < deadline, "the server never said its port");
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(20));
            let port: u16 = std::fs::read_to_string(&asked).unwrap().parse().unwrap();
            let held = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            std::fs::write(dir.join("taken"), "").unwrap();
            (port, held)
        })
    };
    let _one = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["run", "--format", "json", "tests/fixtures/servers/taken.md"])
        .env("AULA_CACHE_DIR", cache.path())
        .env("AULA_TEST_TAKEN_DIR", dir.path())
        .current_dir(root())
        .output()
        .expect("aula runs");
    let (first, _held) = taker.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(exercise(&r, "porta-tomada")["verdict"], "pass", "{r:#}");
    let again: u16 = std::fs::read_to_string(dir.path().join("again"))
        .expect("the exercise ran a second time")
        .parse()
        .unwrap();
    assert_ne!(
        again, first,
        "the second try was given the taken port again"
    );
}
