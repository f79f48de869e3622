//! Where CI systems show results: JUnit XML (quick-junit), and on GitHub
//! Actions, workflow annotations at the lesson's lines and a step summary.
//!
//! Both are made from the JSON report, so a merge of shards produces them
//! exactly as one unsharded run would. A hidden client's details (its
//! message, diff, output) never appear: only that a hidden test failed.

use std::io::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn millis(v: &Value) -> Duration {
    Duration::from_millis(v["duration_ms"].as_u64().unwrap_or(0))
}

fn is_hidden(cell: &Value) -> bool {
    cell["hidden"] == Value::Bool(true)
}

/// What may be said of an exercise's failure: its message and details,
/// unless a hidden client is what failed.
fn exercise_failure(ex: &Value) -> (String, String) {
    let cells = ex["cells"].as_array().cloned().unwrap_or_default();
    let failing_hidden = cells
        .iter()
        .filter(|c| is_hidden(c) && c["verdict"] != "pass" && c["verdict"] != "skipped")
        .count();
    let visible_failures: Vec<&Value> = cells
        .iter()
        .filter(|c| !is_hidden(c) && c["verdict"] != "pass" && c["verdict"] != "skipped")
        .collect();
    if visible_failures.is_empty() && failing_hidden > 0 {
        let hidden: Vec<&Value> = cells.iter().filter(|c| is_hidden(c)).collect();
        let at = hidden.iter().position(|c| c["verdict"] != "pass");
        let n = at.map_or(1, |i| i + 1);
        // The faults it ran under may be said: they are the lesson's, not
        // the test's input.
        let faults: Vec<&str> = at
            .and_then(|i| hidden[i]["wire_described"].as_array())
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let under = match faults.is_empty() {
            true => String::new(),
            false => format!(" ({})", faults.join(", ")),
        };
        return (
            format!("hidden test {n}{under}: {}", str_of(ex, "verdict")),
            String::new(),
        );
    }
    let mut body = String::new();
    for c in visible_failures {
        if let Some(m) = c["message"].as_str() {
            body.push_str(m);
            body.push('\n');
        }
        for e in c["compile_errors"].as_array().into_iter().flatten() {
            body.push_str(str_of(e, "rendered"));
        }
        if let Some(d) = c["diff"].as_str() {
            body.push_str(d);
        }
        if let Some(s) = c["stderr"].as_str() {
            body.push_str("stderr:\n");
            body.push_str(s);
            body.push('\n');
        }
    }
    let message = cells
        .iter()
        .filter(|c| !is_hidden(c))
        .find_map(|c| c["message"].as_str().filter(|_| c["verdict"] != "pass"))
        .unwrap_or(str_of(ex, "verdict"))
        .to_owned();
    (message, body)
}

fn cell_body(c: &Value) -> String {
    let mut body = String::new();
    for e in c["compile_errors"].as_array().into_iter().flatten() {
        body.push_str(str_of(e, "rendered"));
    }
    if let Some(d) = c["diff"].as_str() {
        body.push_str(d);
    }
    if let Some(s) = c["stderr"].as_str() {
        body.push_str(s);
    }
    body
}

fn failed_case(name: String, verdict: &str, message: String, body: String) -> TestCase {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type(verdict).set_message(message);
    if !body.is_empty() {
        status.set_description(body);
    }
    TestCase::new(name, status)
}

/// JUnit XML of a report: a suite per lesson, a case per exercise and per
/// checked plain cell.
pub fn junit(report: &Value) -> String {
    let mut junit = Report::new("aula");
    for lesson in report["lessons"].as_array().into_iter().flatten() {
        let path = str_of(lesson, "path");
        let mut suite = TestSuite::new(path);
        let plain = lesson["cells"].as_array().into_iter().flatten().chain(
            lesson["unchecked_cell_failures"]
                .as_array()
                .into_iter()
                .flatten(),
        );
        for cell in plain {
            let name = format!("{path}::(cell at line {})", cell["line"]);
            let verdict = str_of(cell, "verdict");
            let mut case = if verdict == "pass" {
                TestCase::new(name, TestCaseStatus::success())
            } else {
                let message = str_of(cell, "message").to_owned();
                failed_case(name, verdict, message, cell_body(cell))
            };
            case.set_classname(path).set_time(millis(cell));
            suite.add_test_case(case);
        }
        for ex in lesson["exercises"].as_array().into_iter().flatten() {
            let name = ex["name"]
                .as_str()
                .map_or_else(|| format!("{path}::{}", str_of(ex, "id")), str::to_owned);
            let verdict = str_of(ex, "verdict");
            let mut case = if verdict == "pass" {
                TestCase::new(name, TestCaseStatus::success())
            } else {
                let (message, body) = exercise_failure(ex);
                failed_case(name, verdict, message, body)
            };
            case.set_classname(path).set_time(millis(ex));
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().unwrap_or_default()
}

/// JUnit XML of a grading batch (`aula grade --junit`), from its
/// `grades.json`: a suite per student, a case per check
/// (`ana::tcp-echo::server`), and for an unreadable submission one failing
/// case with the reasons. It holds only what `grades.json` holds, so no
/// hidden client's details.
pub fn grades_junit(grades: &Value) -> String {
    let mut junit = Report::new("aula grade");
    for student in grades["students"].as_array().into_iter().flatten() {
        let name = str_of(student, "student");
        let mut suite = TestSuite::new(name);
        let errors: Vec<&str> = student["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !errors.is_empty() {
            let status = str_of(student, "status");
            let mut case = failed_case(
                format!("{name}::(submission)"),
                status,
                errors.join("; "),
                errors.join("\n"),
            );
            case.set_classname(name);
            suite.add_test_case(case);
        }
        for ex in student["exercises"].as_array().into_iter().flatten() {
            let id = str_of(ex, "id");
            for check in ex["checks"].as_array().into_iter().flatten() {
                let case_name = format!("{name}::{id}::{}", str_of(check, "check"));
                let verdict = str_of(check, "verdict");
                let mut case = if verdict == "pass" {
                    TestCase::new(case_name, TestCaseStatus::success())
                } else {
                    let body = [str_of(check, "compiler"), str_of(check, "diff")].concat();
                    failed_case(
                        case_name,
                        verdict,
                        str_of(check, "message").to_owned(),
                        body,
                    )
                };
                case.set_classname(format!("{name}::{id}"));
                suite.add_test_case(case);
            }
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
pub fn annotations(report: &Value) -> String {
    let mut out = String::new();
    let mut error = |file: &str, line: &Value, col: Option<&Value>, title: &str, msg: &str| {
        let col = col
            .and_then(Value::as_u64)
            .map(|c| format!(",col={c}"))
            .unwrap_or_default();
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
    for lesson in report["lessons"].as_array().into_iter().flatten() {
        let path = str_of(lesson, "path");
        let plain = lesson["cells"].as_array().into_iter().flatten().chain(
            lesson["unchecked_cell_failures"]
                .as_array()
                .into_iter()
                .flatten(),
        );
        for cell in plain.filter(|c| c["verdict"] != "pass") {
            let title = format!("cell: {}", str_of(cell, "verdict"));
            error(path, &cell["line"], None, &title, str_of(cell, "message"));
        }
        for ex in lesson["exercises"].as_array().into_iter().flatten() {
            if ex["verdict"] == "pass" {
                continue;
            }
            let title = format!("{}: {}", str_of(ex, "id"), str_of(ex, "verdict"));
            let (message, body) = exercise_failure(ex);
            error(
                path,
                &ex["line"],
                None,
                &title,
                &format!("{message}\n{body}"),
            );
            let cells = ex["cells"].as_array().into_iter().flatten();
            for cell in cells.filter(|c| !is_hidden(c)) {
                for e in cell["compile_errors"].as_array().into_iter().flatten() {
                    if e["line"].is_u64() {
                        let title = format!("{}: compile error", str_of(ex, "id"));
                        error(
                            path,
                            &e["line"],
                            Some(&e["column"]),
                            &title,
                            str_of(e, "message"),
                        );
                    }
                }
            }
        }
    }
    out
}

/// A Markdown table for `$GITHUB_STEP_SUMMARY`.
pub fn step_summary(report: &Value) -> String {
    let s = &report["summary"];
    let mut out = format!(
        "### aula: {} of {} exercises passed, score {}/{}\n\n| lesson | exercise | verdict | score |\n|---|---|---|---|\n",
        s["passed"], s["exercises"], s["score"], s["max_score"]
    );
    for lesson in report["lessons"].as_array().into_iter().flatten() {
        for ex in lesson["exercises"].as_array().into_iter().flatten() {
            let mark = if ex["verdict"] == "pass" {
                "✅"
            } else {
                "❌"
            };
            out.push_str(&format!(
                "| {} | {} | {mark} {} | {}/{} |\n",
                str_of(lesson, "path"),
                str_of(ex, "id"),
                str_of(ex, "verdict"),
                ex["score"],
                ex["points"]
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
pub fn finish(report: &Value, print_json: bool, junit: Option<&std::path::Path>) {
    if print_json {
        super::json::print(&mut std::io::stdout().lock(), report);
    }
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, self::junit(report))
    {
        eprintln!("error: {}: {e}", path.display());
    }
    // Annotations go where they cannot spoil a JSON report on stdout.
    if print_json {
        if on_github() {
            eprint!("{}", annotations(report));
        }
        github_summary(report);
    } else {
        github(report);
    }
}

/// On GitHub Actions (`GITHUB_ACTIONS=true`): annotations on stdout, and
/// the summary appended to `$GITHUB_STEP_SUMMARY` when it names a file.
pub fn github(report: &Value) {
    if !on_github() {
        return;
    }
    print!("{}", annotations(report));
    github_summary(report);
}

/// Appends the step summary, on GitHub Actions, when
/// `$GITHUB_STEP_SUMMARY` names a file.
pub fn github_summary(report: &Value) {
    if !on_github() {
        return;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
    {
        let _ = f.write_all(step_summary(report).as_bytes());
    }
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
