//! Instructors' tools around grading: a regrade compared with the first
//! gradebook (`aula grade --compare`), the gradebook into a Canvas export
//! (`--canvas`), and similar submissions
//! (`aula similar`), run as an instructor runs them.

use std::path::{Path, PathBuf};

mod support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn aula(args: &[&str]) -> (Option<i32>, String, String) {
    support::aula_in(&root(), args, &[])
}

fn grade(reference: &str, out: &Path, extra: &[&str]) -> (String, String) {
    let dir = "tests/fixtures/servers/grade";
    let reference = format!("{dir}/{reference}");
    let subs = format!("{dir}/subs");
    let mut args = vec![
        "grade",
        reference.as_str(),
        subs.as_str(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let (status, stdout, stderr) = aula(&args);
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn a_regrade_after_a_reference_fix_lists_the_two_students_whose_score_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    // The first reference's hidden client forgot the end of its line: its
    // one-`read` solution passes, Lia's whole-line server waits in vain.
    grade("linhas-antes.md", &first, &[]);
    let csv = std::fs::read_to_string(first.join("grades.csv")).unwrap();
    assert!(
        csv.contains("lia,graded,0,2,0\nrui,graded,2,2,2\n"),
        "{csv}"
    );
    let dir = "tests/fixtures/servers/grade";
    let (export, roster) = (
        format!("{dir}/canvas-export.csv"),
        format!("{dir}/roster.csv"),
    );
    let (stdout, stderr) = grade(
        "linhas.md",
        &second,
        &[
            "--compare",
            first.to_str().unwrap(),
            "--canvas",
            &export,
            "--canvas-column",
            "Servidor de linhas",
            "--roster",
            &roster,
        ],
    );
    let changes = std::fs::read_to_string(second.join("changes.csv")).unwrap();
    let rows: Vec<&str> = changes.lines().collect();
    assert_eq!(rows[0], "student,old_score,new_score,changed_checks");
    assert!(rows[1].starts_with("lia,0,2,linhas/server: "), "{changes}");
    assert!(rows[1].ends_with(" → pass"), "{changes}");
    assert!(
        rows[2].starts_with("rui,2,0,linhas/server: pass → "),
        "{changes}"
    );
    assert_eq!(rows.len(), 3, "{changes}");
    assert!(
        stdout.contains("2 students whose score changed against"),
        "{stdout}\n{stderr}"
    );
    // The Canvas export comes back with the column filled (Lia through the
    // roster), every other cell as it was, and Eva, who submitted nothing,
    // named.
    let canvas = std::fs::read_to_string(second.join("canvas.csv"))
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(
        canvas,
        "Student,ID,SIS User ID,SIS Login ID,Section,Servidor de linhas (501),Aula 7 (502),Current Score\n\
         \x20   Points Possible,,,,,2.00,7.00,(read only)\n\
         \"Martins, Lia\",11,s11,lia.martins,Turma A,2,5,\n\
         \"Rocha, Rui\",12,s12,rui,Turma A,0,6,\n\
         \"Lima, Eva\",13,s13,eva,Turma B,,7,\n"
    );
    assert!(
        stderr.contains("column `Servidor de linhas (501)` filled for 2 students"),
        "{stderr}"
    );
    assert!(
        stderr.contains("in the export but not in the batch (left as they were): eva"),
        "{stderr}"
    );
    // Compared with itself, nothing changed, and the table says so.
    let third = tmp.path().join("third");
    let (stdout, _) = grade(
        "linhas.md",
        &third,
        &["--compare", second.to_str().unwrap()],
    );
    assert!(stdout.contains("No score changed against"), "{stdout}");
    let changes = std::fs::read_to_string(third.join("changes.csv")).unwrap();
    assert_eq!(changes, "student,old_score,new_score,changed_checks\n");
}

#[test]
fn similar_ranks_the_copied_pair_first_and_writes_reports_that_are_not_verdicts() {
    let out = tempfile::tempdir().unwrap();
    let (status, stdout, stderr) = aula(&[
        "similar",
        "tests/fixtures/similar/ref.md",
        "tests/fixtures/similar/subs",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("never a verdict"), "{stdout}");
    let csv = std::fs::read_to_string(out.path().join("similarity.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["a", "b", "score"]);
    // Caio copied Ana, renaming, reordering and commenting; Bruno and Duda
    // wrote their own.
    assert_eq!(rows[1][..2], ["ana", "caio"], "{csv}");
    let score = |r: &Vec<&str>| r[2].parse::<f64>().unwrap();
    assert!(score(&rows[1]) > 0.6, "{csv}");
    assert!(rows[2..].iter().all(|r| score(r) < 0.3), "{csv}");
    assert_eq!(rows.len(), 1 + 6);
    let pair = std::fs::read_to_string(out.path().join("pairs/ana--caio.md")).unwrap();
    assert!(
        pair.contains("> fn handle(mut conn: std::net::TcpStream)"),
        "{pair}"
    );
    let page = std::fs::read_to_string(out.path().join("similarity.html")).unwrap();
    assert!(
        page.contains("never a verdict") && page.contains("<mark>"),
        "{page}"
    );
}

#[test]
fn a_regrade_runs_only_the_checks_whose_inputs_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = root().join("tests/fixtures/servers/grade/regrade");
    let (reference, subs) = (tmp.path().join("ref.md"), tmp.path().join("subs"));
    std::fs::create_dir_all(&subs).unwrap();
    for s in ["lia", "rui"] {
        std::fs::copy(
            fixtures.join(format!("subs/{s}.md")),
            subs.join(format!("{s}.md")),
        )
        .unwrap();
    }
    let grade = |version: &str, out: &str, extra: &[&str]| {
        std::fs::copy(fixtures.join(version), &reference).unwrap();
        let out = tmp.path().join(out);
        let mut args = vec![
            "grade",
            reference.to_str().unwrap(),
            subs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let (status, stdout, stderr) = aula(&args);
        assert_eq!(status, Some(0), "{stdout}\n{stderr}");
        (out, stderr)
    };
    let (first, _) = grade("antes.md", "first", &[]);
    // The first log's results get a mark: what a regrade takes from the
    // log carries it, what it runs again does not.
    let log = first.join("grading-log.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(
        &log,
        text.replace("\"client 1 (ref.md:", "\"client 1 (kept, ref.md:"),
    )
    .unwrap();

    // The reference's `linhas` is fixed; `saudacao` is as it was.
    let first_arg = first.to_str().unwrap().to_owned();
    let (second, stderr) = grade("depois.md", "second", &["--compare", &first_arg]);
    assert!(
        stderr.contains("Regrade: 4 of 6 checks taken from the earlier results log"),
        "{stderr}"
    );
    let book: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second.join("grades.json")).unwrap())
            .unwrap();
    for student in book["students"].as_array().unwrap() {
        for ex in student["exercises"].as_array().unwrap() {
            let text = ex.to_string();
            let kept = text.contains("kept, ref.md:");
            assert_eq!(kept, ex["id"] == "saudacao", "{ex:#}");
        }
    }
    // The fix changed two scores, as a full regrade would.
    let changes = std::fs::read_to_string(second.join("changes.csv")).unwrap();
    assert!(
        changes.contains("\nlia,1,3,linhas/server: timeout → pass"),
        "{changes}"
    );
    assert!(
        changes.contains("\nrui,3,1,linhas/server: pass → mismatch"),
        "{changes}"
    );

    // Rui changes his client: only that check runs again.
    let rui = subs.join("rui.md");
    let text = std::fs::read_to_string(&rui).unwrap();
    let changed = text.replace(
        "s.write_all(b\"Ana\\n\")?;",
        "s.write_all(b\"Ana\\n\")?; // pronto",
    );
    assert_ne!(text, changed);
    std::fs::write(&rui, changed).unwrap();
    let second_arg = second.to_str().unwrap().to_owned();
    let (_, stderr) = grade("depois.md", "third", &["--compare", &second_arg]);
    assert!(
        stderr.contains("Regrade: 5 of 6 checks taken from the earlier results log"),
        "{stderr}"
    );
}
