//! Where CI systems show results: JUnit XML (quick-junit), and on GitHub
//! Actions, workflow annotations at the lesson's lines and a step summary.
//!
//! Both are made from the JSON report, read back as a [`Report`], so a
//! merge of shards produces them exactly as one unsharded run would. A
//! hidden client's details (its message, diff, output) never appear: only
//! that a hidden test failed. (A grading batch's JUnit is made in
//! `grade::output`, from its grades, with [`failed_case`].)

use std::io::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;

use super::json::{CellReport, ExerciseReport, LessonReport, Report};
use crate::outcome::Verdict;
use crate::plan::UnitId;

fn millis(ms: Option<u64>) -> Duration {
    Duration::from_millis(ms.unwrap_or(0))
}

/// A verdict that says the cell failed: not `pass`, and not `skipped`
/// (a cell that never ran says nothing of its own).
fn failed(c: &CellReport) -> bool {
    !matches!(c.verdict, Verdict::Pass | Verdict::Skipped)
}

/// What may be said of an exercise's failure: its message and details,
/// unless a hidden client is what failed.
fn exercise_failure(ex: &ExerciseReport) -> (String, String) {
    let cells = ex.cells.as_deref().unwrap_or_default();
    let failing_hidden = cells.iter().filter(|c| c.is_hidden() && failed(c)).count();
    let visible_failures: Vec<&CellReport> = cells
        .iter()
        .filter(|c| !c.is_hidden() && failed(c))
        .collect();
    if visible_failures.is_empty() && failing_hidden > 0 {
        let hidden: Vec<&CellReport> = cells.iter().filter(|c| c.is_hidden()).collect();
        let at = hidden.iter().position(|c| c.verdict != Verdict::Pass);
        let n = at.map_or(1, |i| i + 1);
        // The faults it ran under may be said: they are the lesson's, not
        // the test's input.
        let faults: Vec<&str> = at
            .and_then(|i| hidden[i].wire_described.as_deref())
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let under = match faults.is_empty() {
            true => String::new(),
            false => format!(" ({})", faults.join(", ")),
        };
        return (
            format!("hidden test {n}{under}: {}", ex.verdict.as_str()),
            String::new(),
        );
    }
    let mut body = String::new();
    for c in visible_failures {
        if let Some(m) = &c.message {
            body.push_str(m);
            body.push('\n');
        }
        for e in c.compile_errors.iter().flatten() {
            body.push_str(&e.rendered);
        }
        if let Some(d) = &c.diff {
            body.push_str(d);
        }
        if let Some(s) = &c.stderr {
            body.push_str("stderr:\n");
            body.push_str(s);
            body.push('\n');
        }
    }
    let message = cells
        .iter()
        .filter(|c| !c.is_hidden())
        .find_map(|c| c.message.as_deref().filter(|_| c.verdict != Verdict::Pass))
        .unwrap_or(ex.verdict.as_str())
        .to_owned();
    (message, body)
}

fn cell_body(c: &CellReport) -> String {
    let mut body = String::new();
    for e in c.compile_errors.iter().flatten() {
        body.push_str(&e.rendered);
    }
    if let Some(d) = &c.diff {
        body.push_str(d);
    }
    if let Some(s) = &c.stderr {
        body.push_str(s);
    }
    body
}

/// A failing JUnit case: `kind` (a verdict, a grading status) as its type.
pub fn failed_case(name: String, kind: &str, message: String, body: String) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type(kind).set_message(message);
    if !body.is_empty() {
        status.set_description(body);
    }
    TestCase::new(name, status)
}

/// A lesson's plain cells: those with an output block, then the failing
/// ones without.
fn plain_cells(lesson: &LessonReport) -> impl Iterator<Item = &CellReport> {
    let unchecked = lesson.unchecked_cell_failures.iter().flatten();
    lesson.cells.iter().chain(unchecked)
}

/// JUnit XML of a report: a suite per lesson, a case per exercise and per
/// checked plain cell.
pub fn junit_of(report: &Report) -> String {
    let mut junit = Junit::new("aula");
    for lesson in &report.lessons {
        let path = lesson.path.as_str();
        let mut suite = TestSuite::new(path);
        for cell in plain_cells(lesson) {
            let name = format!("{path}::(cell at line {})", cell.line);
            let mut case = if cell.verdict == Verdict::Pass {
                TestCase::new(name, TestCaseStatus::success())
            } else {
                let message = cell.message.clone().unwrap_or_default();
                failed_case(name, cell.verdict.as_str(), message, cell_body(cell))
            };
            case.set_classname(path).set_time(millis(cell.duration_ms));
            suite.add_test_case(case);
        }
        for ex in &lesson.exercises {
            let name = ex
                .name
                .clone()
                .unwrap_or_else(|| UnitId::new(path, &ex.id))
                .to_string();
            let mut case = if ex.verdict == Verdict::Pass {
                TestCase::new(name, TestCaseStatus::success())
            } else {
                let (message, body) = exercise_failure(ex);
                failed_case(name, ex.verdict.as_str(), message, body)
            };
            case.set_classname(path).set_time(millis(ex.duration_ms));
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().unwrap_or_default()
}

/// A workflow command's message: `%`, CR and LF escaped.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property: also `:` and `,`.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::error` lines for each failing exercise and cell, and each compile
/// error, at the lesson's file and line.
pub fn annotations_of(report: &Report) -> String {
    let mut out = String::new();
    let mut error = |file: &str, line: u64, col: Option<u64>, title: &str, msg: &str| {
        let col = col.map(|c| format!(",col={c}")).unwrap_or_default();
        // A notebook's lines are its Markdown form's, not the file's: the
        // annotation names the file only.
        let at = if file.ends_with(".ipynb") {
            String::new()
        } else {
            format!(",line={line}{col}")
        };
        out.push_str(&format!(
            "::error file={}{at},title={}::{}\n",
            escape_property(file),
            escape_property(title),
            escape_data(msg)
        ));
    };
    for lesson in &report.lessons {
        let path = lesson.path.as_str();
        for cell in plain_cells(lesson).filter(|c| c.verdict != Verdict::Pass) {
            let title = format!("cell: {}", cell.verdict.as_str());
            let message = cell.message.as_deref().unwrap_or_default();
            error(path, cell.line, None, &title, message);
        }
        for ex in &lesson.exercises {
            if ex.verdict == Verdict::Pass {
                continue;
            }
            let title = format!("{}: {}", ex.id, ex.verdict.as_str());
            let (message, body) = exercise_failure(ex);
            error(path, ex.line, None, &title, &format!("{message}\n{body}"));
            let cells = ex.cells.iter().flatten();
            for cell in cells.filter(|c| !c.is_hidden()) {
                for e in cell.compile_errors.iter().flatten() {
                    // One the lesson does not show has no line to point at.
                    if let Some(line) = e.line {
                        let title = format!("{}: compile error", ex.id);
                        error(path, line, e.column, &title, &e.message);
                    }
                }
            }
        }
    }
    out
}

/// A Markdown table for `$GITHUB_STEP_SUMMARY`.
pub fn step_summary_of(report: &Report) -> String {
    let s = &report.summary;
    let mut out = format!(
        "### aula: {} of {} exercises passed, score {}/{}\n\n| lesson | exercise | verdict | score |\n|---|---|---|---|\n",
        s.passed, s.exercises, s.score, s.max_score
    );
    for lesson in &report.lessons {
        for ex in &lesson.exercises {
            let mark = if ex.verdict == Verdict::Pass {
                "✅"
            } else {
                "❌"
            };
            out.push_str(&format!(
                "| {} | {} | {mark} {} | {}/{} |\n",
                lesson.path,
                ex.id,
                ex.verdict.as_str(),
                ex.score,
                ex.points
            ));
        }
    }
    out
}

/// Whether this runs on GitHub Actions (`GITHUB_ACTIONS=true`).
fn on_github() -> bool {
    std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true")
}

/// Where a finished run's report goes, for `aula run` and `aula merge`
/// alike: stdout as JSON (`print_json`), JUnit (`junit`), and GitHub's
/// annotations and step summary.
pub fn finish(value: &Value, print_json: bool, junit: Option<&std::path::Path>) {
    if print_json {
        super::json::print(&mut std::io::stdout().lock(), value);
    }
    // The report was written by this aula (a run's, or a merge's), so it
    // reads back; one that does not is a bug, said rather than hidden.
    let report = match Report::read(value) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: the JSON report cannot be read back for JUnit or GitHub: {e}");
            return;
        }
    };
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, junit_of(&report))
    {
        eprintln!("error: {}: {e}", path.display());
    }
    // Annotations go where they cannot spoil a JSON report on stdout.
    if print_json {
        if on_github() {
            eprint!("{}", annotations_of(&report));
        }
        github_summary(&report);
    } else {
        github(&report);
    }
}

/// On GitHub Actions (`GITHUB_ACTIONS=true`): annotations on stdout, and
/// the summary appended to `$GITHUB_STEP_SUMMARY` when it names a file.
fn github(report: &Report) {
    if !on_github() {
        return;
    }
    print!("{}", annotations_of(report));
    github_summary(report);
}

/// Appends the step summary, on GitHub Actions, when
/// `$GITHUB_STEP_SUMMARY` names a file.
fn github_summary(report: &Report) {
    if !on_github() {
        return;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
    {
        let _ = f.write_all(step_summary_of(report).as_bytes());
    }
}

// The tests below write reports as JSON values, as `finish` gets them;
// these read them back as it does.
#[cfg(test)]
fn junit(report: &Value) -> String {
    junit_of(&Report::read(report).unwrap())
}

#[cfg(test)]
fn annotations(report: &Value) -> String {
    annotations_of(&Report::read(report).unwrap())
}

#[cfg(test)]
fn step_summary(report: &Value) -> String {
    step_summary_of(&Report::read(report).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "lessons": [{
                "path": "l.md",
                "cells": [{ "line": 3, "verdict": "pass", "duration_ms": 5 }],
                "exercises": [
                    { "id": "a", "name": "l.md::a", "line": 10, "verdict": "pass",
                      "points": 1, "score": 1, "duration_ms": 1500, "cells": [] },
                    { "id": "b", "name": "l.md::b", "line": 20, "verdict": "mismatch",
                      "points": 2, "score": 0, "duration_ms": 700, "cells": [
                        { "role": "server", "line": 20, "verdict": "pass" },
                        { "role": "client", "index": 1, "line": 30, "hidden": true,
                          "verdict": "mismatch", "message": "client 1 (line 30) differs",
                          "diff": "-SECRET expected\n+SECRET actual\n" }
                      ]},
                    { "id": "c", "name": "l.md::c", "line": 40, "verdict": "compile_error",
                      "points": 1, "score": 0, "duration_ms": 10, "cells": [
                        { "role": "server", "line": 40, "verdict": "compile_error",
                          "message": "the server (line 40) does not compile",
                          "compile_errors": [{ "line": 42, "column": 5, "message": "mismatched types",
                            "rendered": "error[E0308]: mismatched, 100%\n" }] }
                      ]}
                ]
            }],
            "summary": { "exercises": 3, "passed": 1, "failed": 2, "score": 1, "max_score": 4 }
        })
    }

    #[test]
    fn junit_has_a_case_per_unit_and_keeps_hidden_details_out() {
        let xml = junit(&report());
        assert!(xml.contains(r#"<testsuite name="l.md" tests="4""#), "{xml}");
        assert!(xml.contains(r#"failures="2""#), "{xml}");
        assert!(
            xml.contains(r#"name="l.md::a""#) && xml.contains(r#"time="1.500""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"type="mismatch""#) && xml.contains("hidden test 1"),
            "{xml}"
        );
        assert!(!xml.contains("SECRET"), "{xml}");
        assert!(xml.contains("error[E0308]"), "{xml}");
    }

    #[test]
    fn annotations_point_at_lines_and_escape_their_text() {
        let text = annotations(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("::error file=l.md,line=20,title=b%3A mismatch::hidden test 1")
        );
        assert!(lines[1].starts_with("::error file=l.md,line=40,title=c%3A compile_error::"));
        assert!(lines[1].contains("100%25"), "{}", lines[1]);
        assert_eq!(
            lines[2],
            "::error file=l.md,line=42,col=5,title=c%3A compile error::mismatched types"
        );
        assert!(!text.contains("SECRET"));
        let summary = step_summary(&report());
        assert!(
            summary.contains("| l.md | b | ❌ mismatch | 0/2 |"),
            "{summary}"
        );
    }
}
