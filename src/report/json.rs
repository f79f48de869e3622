//! The JSON report of REPORT-FORMAT.md (version 1.1), with aula's added
//! fields (docs/report-format.md), as one set of types ([`Report`] and
//! the types under it): the writer fills them from a run's results, and
//! its readers (`aula merge`, JUnit, GitHub) read them back. The
//! contract's fields keep their names and meanings; messages are in
//! English whatever the user's language.

use std::io::Write;

use serde_json::{Map, Value};

use super::{Event, Reporter, cell_message, exercise_message, render_diagnostic};
use crate::i18n::ENGLISH;
use crate::lesson::Lesson;
use crate::observation::Diagnostic;
use crate::outcome::Finished;
use crate::outcome::{CellResult, ExerciseResult, Role, Summary, Verdict};
use crate::plan::UnitId;

fn millis(d: std::time::Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// A count or place as the report writes it.
fn n(x: usize) -> u64 {
    x.try_into().unwrap_or(u64::MAX)
}

/// A flag the report writes only as `true`.
fn only_true(b: bool) -> Option<bool> {
    b.then_some(true)
}

fn compile_errors<'a>(
    diagnostics: impl Iterator<Item = &'a Diagnostic>,
    lesson: &Lesson,
) -> Option<Vec<CompileError>> {
    let errors: Vec<CompileError> = diagnostics
        .map(|d| {
            let place = super::diagnostic_place(d, lesson);
            let cell = lesson
                .source
                .notebook
                .as_ref()
                .zip(place)
                .map(|(map, (line, _))| n(map.place(line).cell));
            CompileError {
                cell,
                message: d.message.clone(),
                code: d.code.clone(),
                line: place.map(|p| n(p.0)),
                column: place.map(|p| n(p.1)),
                rendered: render_diagnostic(d, lesson),
                rest: Map::new(),
            }
        })
        .collect();
    (!errors.is_empty()).then_some(errors)
}

/// In a notebook, `line` is a line of its Markdown form (`aula convert
/// --to md`), and `cell` the notebook's cell, from 1.
fn notebook_cell(lesson: &Lesson, line: usize) -> Option<u64> {
    let map = lesson.source.notebook.as_ref()?;
    Some(n(map.place(line).cell))
}

/// A cell with the fields it has whatever kind it is; an exercise's cell
/// adds its own.
fn cell_report(c: &CellResult, lesson: &Lesson) -> CellReport {
    let line = lesson.cell(c.cell).line();
    CellReport {
        role: None,
        index: None,
        hidden: None,
        wire: None,
        wire_described: None,
        line: n(line),
        cell: notebook_cell(lesson, line),
        verdict: c.verdict,
        duration_ms: Some(millis(c.duration)),
        cached: only_true(c.cached),
        message: cell_message(lesson, c, ENGLISH),
        diff: c.diff.clone(),
        stderr: c.stderr.clone().filter(|_| !c.verdict.passed()),
        compile_errors: compile_errors(c.diagnostics.iter(), lesson),
        rest: Map::new(),
    }
}

fn exercise_cell(c: &CellResult, lesson: &Lesson) -> CellReport {
    let (role, index) = match c.role {
        Some(Role::Client(k)) => (CellRole::Client, Some(n(k + 1))),
        _ => (CellRole::Server, None),
    };
    // (1.2) The faults a client ran under, as the lesson writes them, and
    // in words: a hidden client's too, so a student knows why it failed.
    let wire = lesson.cell(c.cell).wire();
    let faults = (!wire.is_empty()).then_some(wire);
    CellReport {
        role: Some(role),
        index,
        hidden: only_true(lesson.cell(c.cell).is_hidden()),
        wire: faults.map(|w| w.iter().map(ToString::to_string).collect()),
        wire_described: faults.map(|w| w.iter().map(|f| f.describe(ENGLISH)).collect()),
        ..cell_report(c, lesson)
    }
}

fn exercise(e: &ExerciseResult, lesson: &Lesson) -> ExerciseReport {
    // An exercise's result comes from its lesson, so `ex` is found; were
    // it not, `name` and `cell` would be left out and `line` be 0 (the
    // readers need a line).
    let ex = lesson.exercise(&e.id);
    let line = ex.map(|ex| ex.line);
    let failed = !e.verdict.passed();
    ExerciseReport {
        id: e.id.clone(),
        name: ex.map(|ex| UnitId::exercise(lesson, ex)),
        line: line.map_or(0, n),
        cell: line.and_then(|l| notebook_cell(lesson, l)),
        verdict: e.verdict,
        points: u64::from(e.points),
        score: u64::from(e.score()),
        duration_ms: Some(millis(e.duration)),
        cached: only_true(e.cached),
        message: exercise_message(lesson, e, ENGLISH),
        diff: e.diff(),
        stderr: e.stderr().map(str::to_owned),
        wire: e.wire.as_deref().filter(|_| failed).map(super::wire::json),
        compile_errors: compile_errors(e.diagnostics(), lesson),
        cells: Some(e.cells.iter().map(|c| exercise_cell(c, lesson)).collect()),
        hint: super::hint(ex, e).map(str::to_owned),
        rest: Map::new(),
    }
}

/// What a run was asked to do, for merging shards: aula's version, a hash
/// of the inputs, the lessons in order, every unit of the unsharded run and
/// this shard's own.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub aula: String,
    pub inputs: String,
    /// Not read back: `aula merge` works them out again from `all_units`.
    #[serde(default)]
    pub lessons: Vec<String>,
    pub partition: Option<String>,
    pub all_units: Vec<UnitId>,
    pub units: Vec<UnitId>,
}

/// The whole report; `run` as the run was asked, where it says.
pub fn report(finished: &Finished, lessons: &[&Lesson], run: Option<&RunInfo>) -> Report {
    let lessons = finished
        .results
        .iter()
        .zip(lessons)
        .map(|(r, lesson)| {
            // `cells` holds the plain cells with an output block, as the
            // contract says; a failing plain cell without one is reported in
            // the added field `unchecked_cell_failures`, so it is not lost.
            let unchecked: Vec<CellReport> = r
                .cells
                .iter()
                .filter(|c| !c.checked && !c.result.verdict.passed())
                .map(|c| cell_report(&c.result, lesson))
                .collect();
            LessonReport {
                path: r.path.display().to_string(),
                cells: r
                    .cells
                    .iter()
                    .filter(|c| c.checked)
                    .map(|c| cell_report(&c.result, lesson))
                    .collect(),
                exercises: r.exercises.iter().map(|e| exercise(e, lesson)).collect(),
                unchecked_cell_failures: (!unchecked.is_empty()).then_some(unchecked),
            }
        })
        .collect();
    let summary = Summary::of(&finished.results);
    Report {
        lessons,
        summary: Totals {
            exercises: n(summary.exercises),
            passed: n(summary.passed),
            failed: n(summary.failed),
            score: u64::from(summary.score),
            max_score: u64::from(summary.max_score),
        },
        runner: Some(Runner {
            contexts_started: n(finished.contexts_started),
        }),
        run: run.map(|info| RunRecord {
            info: info.clone(),
            rest: Map::new(),
        }),
    }
}

// The report's types: `report` writes them, and merge, JUnit and GitHub
// read them back. A field the writer always writes is required, so a
// report that lacks one is refused with serde's words instead of read as
// empty; one it leaves out when there is nothing to say is an `Option`,
// skipped when `None`, so it goes back out only when it came in; one it
// writes as `null` is an `Option` written always. What this aula does not
// name stays in `rest`, whole, so `aula merge` passes on what an aula
// newer than this one may have written; lessons and the top level are
// rebuilt by merge, so they keep nothing they do not name. Field order is
// not theirs to keep: the report is printed as a `serde_json::Value`,
// whose maps order their keys.

/// A report, as the writer makes it and `aula merge`, JUnit and GitHub
/// read it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub lessons: Vec<LessonReport>,
    pub summary: Totals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<Runner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
}

impl Report {
    /// `value` read as a report, or why it is not one.
    pub fn read(value: &Value) -> Result<Report, serde_json::Error> {
        serde::Deserialize::deserialize(value)
    }

    /// The report as [`print`] takes it: its maps' keys in order, as the
    /// writer's are, so a merged report prints as a run's does. Nothing in
    /// a report (maps with string keys, strings, numbers) can fail to
    /// convert.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A lesson: its plain cells and exercises.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LessonReport {
    pub path: String,
    pub cells: Vec<CellReport>,
    pub exercises: Vec<ExerciseReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked_cell_failures: Option<Vec<CellReport>>,
}

/// A plain cell (in `cells` or `unchecked_cell_failures`), or an
/// exercise's cell, which adds `role`, `index`, `hidden` and `wire`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CellReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<CellRole>,
    /// A client's place among its exercise's clients, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Written only as `true`; an `Option`, so a merge writes what came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// (1.2) The faults a client ran under, as the lesson writes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<Vec<String>>,
    /// The same faults in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_described: Option<Vec<String>>,
    pub line: u64,
    /// In a notebook, the notebook's cell, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<u64>,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Written only as `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_errors: Option<Vec<CompileError>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Which half of an exercise a cell is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellRole {
    Server,
    Client,
}

impl CellReport {
    pub fn is_hidden(&self) -> bool {
        self.hidden == Some(true)
    }
}

/// An exercise.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExerciseReport {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<UnitId>,
    pub line: u64,
    /// In a notebook, the notebook's cell, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<u64>,
    pub verdict: Verdict,
    pub points: u64,
    pub score: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Written only as `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// What crossed the wire, when a failed exercise recorded it: its
    /// shape is `report::wire`'s, which builds it as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_errors: Option<Vec<CompileError>>,
    /// Absent from reports of format 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<CellReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A compiler error, in a cell's `compile_errors`. The writer writes its
/// `Option`s always, `null` for none, so they are written back always.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CompileError {
    /// In a notebook, the notebook's cell the error is in, from 1.
    #[serde(default)]
    pub cell: Option<u64>,
    pub message: String,
    /// rustc's code, such as `E0425`.
    #[serde(default)]
    pub code: Option<String>,
    /// `None` where the error is in code the lesson does not show.
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub column: Option<u64>,
    pub rendered: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The summary: merge counts it again rather than read the shards'.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    pub exercises: u64,
    pub passed: u64,
    pub failed: u64,
    pub score: u64,
    pub max_score: u64,
}

/// How the run went about it (`runner`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Runner {
    pub contexts_started: u64,
}

/// `run`, with what an aula newer than this one added to it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub info: RunInfo,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Hands the finished report to a consumer: printed (`--format json`),
/// or turned into JUnit or GitHub annotations.
pub struct Json<F: FnMut(&Value)> {
    run: Option<RunInfo>,
    consume: F,
}

impl<F: FnMut(&Value)> Json<F> {
    pub fn new(run: Option<RunInfo>, consume: F) -> Self {
        Json { run, consume }
    }
}

impl<F: FnMut(&Value)> Reporter for Json<F> {
    fn event(&mut self, event: &Event<'_>) {
        if let Event::Finished(finished, lessons) = event {
            let value = report(finished, lessons, self.run.as_ref()).to_value();
            (self.consume)(&value);
        }
    }
}

/// Prints a report on `out`, ignoring a reader that went away (`| head`).
pub fn print(out: &mut impl Write, value: &Value) {
    let _ = serde_json::to_writer_pretty(&mut *out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::outcome::{Cause, LessonResult, PlainResult};

    const LESSON: &str = "```rust\nfn f() {}\n```\n\n```output\n```\n\n```rust\nfn g() {}\n```\n\n\
```rust,server,exercise=e,points=2\nserve();\n```\n\n\
```rust,client,exercise=e,hidden,wire=split:1\nask();\n```\n\n\
<details><summary>Hint</summary>\n\nListen first.\n</details>\n";

    fn finished() -> Finished {
        let mut plain = CellResult::new(0, None, Verdict::Pass);
        plain.cached = true;
        let mut client = CellResult::new(3, Some(Role::Client(0)), Verdict::Mismatch);
        client.diff = Some("--- expected\n+++ actual\n".into());
        client.stderr = Some("oops\n".into());
        let exercise = ExerciseResult {
            id: "e".into(),
            verdict: Verdict::Mismatch,
            cause: None,
            decided_by: Some(1),
            cells: vec![
                CellResult::new(2, Some(Role::Server), Verdict::Pass),
                client,
            ],
            points: 2,
            duration: Duration::from_millis(1500),
            port: None,
            cached: false,
            wire: None,
        };
        let panicked = CellResult::new(1, None, Verdict::Panic).with_cause(Cause::Panicked {
            thread: "main".into(),
            line: None,
            message: "boom".into(),
        });
        let cell = |result, checked| PlainResult {
            result,
            checked,
            replay: None,
        };
        Finished {
            results: vec![LessonResult {
                path: "l.md".into(),
                cells: vec![cell(plain, true), cell(panicked, false)],
                exercises: vec![exercise],
            }],
            elapsed: Duration::ZERO,
            contexts_started: 2,
            signal: None,
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn the_report_writes_the_formats_fields_and_reads_back_as_written() {
        let lesson = crate::lesson::parse(std::path::Path::new("l.md"), LESSON).unwrap();
        let run = RunInfo {
            aula: "0.1.0".into(),
            inputs: "abc".into(),
            lessons: vec!["l.md".into()],
            partition: None,
            all_units: vec!["l.md::(cells)".parse().unwrap(), "l.md::e".parse().unwrap()],
            units: vec!["l.md::e".parse().unwrap()],
        };
        let value = report(&finished(), &[&lesson], Some(&run)).to_value();
        assert_eq!(keys(&value), ["lessons", "run", "runner", "summary"]);
        assert_eq!(
            value["run"],
            json!({ "aula": "0.1.0", "inputs": "abc", "lessons": ["l.md"], "partition": null,
                    "all_units": ["l.md::(cells)", "l.md::e"], "units": ["l.md::e"] })
        );
        assert_eq!(value["runner"], json!({ "contexts_started": 2 }));
        assert_eq!(
            value["summary"],
            json!({ "exercises": 1, "passed": 0, "failed": 1, "score": 0, "max_score": 2 })
        );
        let l = &value["lessons"][0];
        assert_eq!(
            keys(l),
            ["cells", "exercises", "path", "unchecked_cell_failures"]
        );
        assert_eq!(
            l["cells"][0],
            json!({ "line": 1, "verdict": "pass", "duration_ms": 0, "cached": true })
        );
        assert_eq!(
            keys(&l["unchecked_cell_failures"][0]),
            ["duration_ms", "line", "message", "verdict"]
        );
        let e = &l["exercises"][0];
        assert_eq!(
            keys(e),
            [
                "cells",
                "diff",
                "duration_ms",
                "hint",
                "id",
                "line",
                "name",
                "points",
                "score",
                "stderr",
                "verdict"
            ]
        );
        assert_eq!(
            (&e["name"], &e["line"], &e["duration_ms"]),
            (&json!("l.md::e"), &json!(12), &json!(1500))
        );
        assert_eq!(
            e["cells"][0],
            json!({ "role": "server", "line": 12, "verdict": "pass", "duration_ms": 0 })
        );
        let client = &e["cells"][1];
        assert_eq!(
            keys(client),
            [
                "diff",
                "duration_ms",
                "hidden",
                "index",
                "line",
                "role",
                "stderr",
                "verdict",
                "wire",
                "wire_described"
            ]
        );
        assert_eq!(
            (&client["index"], &client["hidden"], &client["wire"]),
            (&json!(1), &json!(true), &json!(["split:1"]))
        );
        // What the readers take in goes back out the same.
        assert_eq!(Report::read(&value).unwrap().to_value(), value);
    }
}
