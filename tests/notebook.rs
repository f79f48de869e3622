//! Notebooks, rendering, Python peers and the wire, through the real
//! binary: `.ipynb` lessons in and out, the executed lesson as a page,
//! Python cells talking to Rust ones, and `--trace`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

mod support;

/// Runs that start evcxr contexts go one at a time (see tests/cli.rs).
static EVCXR: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

fn aula(args: &[&str], env: &[(&str, &str)]) -> Out {
    let _guard = EVCXR.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(args)
        .env("AULA_CACHE_DIR", cache.path())
        .env("LANG", "C")
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .unwrap();
    Out {
        status: out.status.code().expect("exited"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every Markdown file of `lessons/` and `tests/fixtures/` that is UTF-8.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md")
                && std::str::from_utf8(&std::fs::read(&p).unwrap()).is_ok()
            {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("lessons"), &mut files);
    walk(&root().join("tests/fixtures"), &mut files);
    files.sort();
    files
}

#[test]
fn every_lesson_and_fixture_round_trips_through_a_notebook_that_nbformat_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let files = markdown_files();
    assert!(files.len() > 20, "{files:?}");
    let mut notebooks = Vec::new();
    for (i, md) in files.iter().enumerate() {
        let nb = dir.path().join(format!("{i}.ipynb"));
        let back = dir.path().join(format!("{i}.md"));
        let to = aula(
            &[
                "convert",
                md.to_str().unwrap(),
                "--to",
                "ipynb",
                "--out",
                nb.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(to.status, 0, "{}: {}", md.display(), to.stderr);
        let from = aula(
            &[
                "convert",
                nb.to_str().unwrap(),
                "--to",
                "md",
                "--out",
                back.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(from.status, 0, "{}: {}", md.display(), from.stderr);
        assert!(
            std::fs::read(md).unwrap() == std::fs::read(&back).unwrap(),
            "{} changed on its way through a notebook",
            md.display()
        );
        notebooks.push(nb.to_str().unwrap().to_owned());
    }
    // The Rust kernel's spec, so Jupyter opens it with evcxr_jupyter.
    let lesson: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!(
            "{}.ipynb",
            files.iter().position(|f| f.ends_with("lessons/07-sockets.md")).unwrap()
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(lesson["metadata"]["kernelspec"]["name"], "rust");
    assert_eq!(lesson["metadata"]["language_info"]["name"], "Rust");
    let tagged = lesson["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["metadata"]["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "server"))
        })
        .count();
    assert!(tagged >= 8, "{tagged} server cells");
    let args: Vec<&str> = notebooks.iter().map(String::as_str).collect();
    if let Some(out) = support::python(
        "nbformat",
        "import sys, nbformat\nfor p in sys.argv[1:]:\n    nbformat.validate(nbformat.read(p, as_version=nbformat.NO_CONVERT))\nprint(len(sys.argv) - 1)\n",
        &args,
    ) {
        assert_eq!(out.trim(), notebooks.len().to_string());
    }
}

fn verdicts(report: &Value) -> Vec<(String, String)> {
    report["lessons"][0]["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_notebook_lesson_passes_and_fails_as_its_markdown_twin_with_places_in_cells() {
    let dir = tempfile::tempdir().unwrap();
    let nb = dir.path().join("faults.ipynb");
    let nb = nb.to_str().unwrap();
    assert_eq!(
        aula(
            &[
                "convert",
                "tests/fixtures/faults.md",
                "--to",
                "ipynb",
                "--out",
                nb
            ],
            &[]
        )
        .status,
        0
    );
    let md = aula(
        &["run", "--format", "json", "tests/fixtures/faults.md"],
        &[],
    );
    let ipynb = aula(&["run", "--format", "json", nb], &[]);
    assert_eq!(md.status, 1, "{}", md.stderr);
    assert_eq!(ipynb.status, 1, "{}", ipynb.stderr);
    let md: Value = serde_json::from_str(&md.stdout).unwrap();
    let ipynb: Value = serde_json::from_str(&ipynb.stdout).unwrap();
    assert_eq!(verdicts(&md), verdicts(&ipynb));
    assert!(verdicts(&md).iter().any(|(_, v)| v == "compile_error"));
    // Lines are the Markdown form's; the cell is the notebook's.
    let typo = |r: &Value| {
        r["lessons"][0]["exercises"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == "client-typo")
            .unwrap()
            .clone()
    };
    assert_eq!(typo(&md)["line"], typo(&ipynb)["line"]);
    let cell = typo(&ipynb)["cell"]
        .as_u64()
        .expect("a notebook's exercise names its cell");
    let human = aula(&["run", nb], &[]);
    assert!(
        human
            .stdout
            .contains(&format!("client-typo at {nb}:cell {cell}: compile_error")),
        "{}",
        human.stdout
    );
    // The compiler's message points into the client's cell, at its own line.
    assert!(
        human
            .stdout
            .contains(&format!("--> {nb}:cell {}:2:18", cell + 1)),
        "{}",
        human.stdout
    );
}

#[test]
fn a_broken_notebook_stops_before_anything_runs_naming_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let not_json = write("a.ipynb", "{\"cells\": [");
    let out = aula(&["run", &not_json], &[]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr
            .contains(&format!("{not_json}: not a notebook: invalid JSON")),
        "{}",
        out.stderr
    );
    let old = write("b.ipynb", r#"{"nbformat": 3, "worksheets": []}"#);
    let out = aula(&["run", &old], &[]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("nbformat 3 is not supported"),
        "{}",
        out.stderr
    );
    // Tags that contradict each other; and a notebook from elsewhere, with
    // stored outputs and metadata aula does not use.
    let both = write(
        "c.ipynb",
        r##"{"nbformat": 4, "nbformat_minor": 4, "metadata": {"widgets": {}},
           "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# T"]},
            {"cell_type": "code", "metadata": {"tags": ["server", "client", "exercise=e"], "collapsed": true},
             "execution_count": 3, "outputs": [{"output_type": "stream", "name": "stdout", "text": ["x"]}],
             "source": ["let x = 1;"]}]}"##,
    );
    let out = aula(&["run", &both], &[]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains(&format!(
            "{both}:cell 2: a cell cannot be both `server` and `client`"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn render_shows_what_each_cell_printed_and_the_failures_but_no_hidden_client() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("faults.html");
    let out = aula(
        &[
            "render",
            "tests/fixtures/faults.md",
            "--out",
            html.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status, 1, "{}", out.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script"), "self-contained, no scripts");
    assert!(
        page.contains("two plus two is 4"),
        "a plain cell's actual output"
    );
    assert!(
        page.contains("-Received Hello, world"),
        "the mismatch's diff"
    );
    assert!(page.contains("+Received Hello"), "the mismatch's diff");
    assert!(page.contains("E0308"), "the compile error");
    // A failing lesson with a hidden client: the client's code and output
    // are left out, the visible failure is there.
    let lesson = dir.path().join("eco.md");
    let text = std::fs::read_to_string(root().join("tests/fixtures/grade/eco.md")).unwrap();
    let broken = text.replacen("```output\nOLA\n```", "```output\nOLÁ\n```", 1);
    assert_ne!(broken, text);
    std::fs::write(&lesson, broken).unwrap();
    for page in ["eco-rendered.md", "eco.html"] {
        let out_path = dir.path().join(page);
        let out = aula(
            &[
                "render",
                lesson.to_str().unwrap(),
                "--out",
                out_path.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(out.status, 1, "{}", out.stderr);
        let page = std::fs::read_to_string(&out_path).unwrap();
        assert!(page.contains("+OLA"), "{page}");
        assert!(page.contains("-OLÁ"), "{page}");
        assert!(!page.contains("MARCADOR-DA-REFERENCIA-4471"), "{page}");
        assert!(!page.contains("ZEBRA-SECRETA-91"), "{page}");
        assert!(!page.contains("zebra-secreta-91"), "{page}");
    }
}

#[test]
fn python_peers_talk_to_rust_and_an_exception_is_a_panic() {
    if support::python("socket", "print(1)", &[]).is_none() {
        return;
    }
    let out = aula(&["run", "--format", "json", "tests/fixtures/peers.md"], &[]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        verdicts(&report),
        [
            ("py-server".to_owned(), "pass".to_owned()),
            ("rust-server".to_owned(), "pass".to_owned()),
            ("py-panic".to_owned(), "panic".to_owned()),
        ]
    );
    let panic = &report["lessons"][0]["exercises"][2];
    assert!(
        panic["message"]
            .as_str()
            .unwrap()
            .contains("KeyError: 'falta'"),
        "{panic}"
    );
    // Without python3, the lesson is refused before anything runs, naming
    // each Python cell.
    let out = aula(
        &["run", "tests/fixtures/peers.md"],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "tests/fixtures/peers.md:3: this cell runs with `python3`, which is not installed"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn trace_shows_the_bytes_of_a_mismatching_exercise_both_ways() {
    // TCP: the server echoes only five bytes back.
    let out = aula(
        &[
            "run",
            "--trace",
            "--format",
            "json",
            "--exercise",
            "wrong-echo",
            "tests/fixtures/faults.md",
        ],
        &[],
    );
    assert_eq!(out.status, 1, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let ex = &report["lessons"][0]["exercises"][0];
    assert_eq!(ex["verdict"], "mismatch");
    let wire = ex["wire"].as_array().expect("the wire under a failure");
    assert_eq!(wire.len(), 1, "{wire:?}");
    assert_eq!(wire[0]["protocol"], "tcp");
    let chunks: Vec<(&str, &str)> = wire[0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].as_str().unwrap(), c["hex"].as_str().unwrap()))
        .collect();
    assert_eq!(
        chunks,
        [
            ("client", "48656c6c6f2c20776f726c64"),
            ("server", "48656c6c6f")
        ]
    );
    // UDP, for people: a hex dump with offsets and the printable text.
    let out = aula(&["run", "--trace", "tests/fixtures/trace.md"], &[]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("UDP connection 1 from 127.0.0.1:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("00000000  70 69 6e 67 00 01 ") && out.stdout.contains("|ping..|"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("|PING..|"), "{}", out.stdout);
    // Without --trace there is no relay and no wire.
    let out = aula(&["run", "--format", "json", "tests/fixtures/trace.md"], &[]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(report["lessons"][0]["exercises"][0].get("wire").is_none());
}
