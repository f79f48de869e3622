//! The JSON report of REPORT-FORMAT.md (version 1.1), with aula's added
//! fields (docs/report-format.md): written here, and read back here as
//! [`Report`] by its readers (`aula merge`, JUnit, GitHub). The contract's
//! fields keep their names and meanings; messages are in English whatever
//! the user's language.

use std::io::Write;

use serde_json::{Map, Value, json};

use super::{Event, Reporter, cell_message, exercise_message, render_diagnostic};
use crate::i18n::ENGLISH;
use crate::lesson::Lesson;
use crate::observation::Diagnostic;
use crate::outcome::Finished;
use crate::outcome::{CellResult, ExerciseResult, PlainResult, Role, Summary, Verdict};
use crate::plan::UnitId;

fn millis(d: std::time::Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn compile_errors<'a>(
    diagnostics: impl Iterator<Item = &'a Diagnostic>,
    lesson: &Lesson,
) -> Option<Value> {
    let errors: Vec<Value> = diagnostics
        .map(|d| {
            let place = super::diagnostic_place(d, lesson);
            let cell = lesson
                .source
                .notebook
                .as_ref()
                .zip(place)
                .map(|(map, (line, _))| map.place(line).cell);
            json!({
                "cell": cell,
                "message": d.message,
                "code": d.code,
                "line": place.map(|p| p.0),
                "column": place.map(|p| p.1),
                "rendered": render_diagnostic(d, lesson),
            })
        })
        .collect();
    (!errors.is_empty()).then_some(Value::Array(errors))
}

/// In a notebook, `line` is a line of its Markdown form (`aula convert
/// --to md`), and `cell` the notebook's cell, from 1.
fn notebook_cell(obj: &mut Map<String, Value>, lesson: &Lesson, line: usize) {
    if let Some(map) = &lesson.source.notebook {
        obj.insert("cell".into(), json!(map.place(line).cell));
    }
}

fn put(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        obj.insert(key.into(), v);
    }
}

/// The fields a cell has whatever kind it is.
fn cell_fields(obj: &mut Map<String, Value>, c: &CellResult, lesson: &Lesson) {
    obj.insert("line".into(), json!(lesson.cell(c.cell).line()));
    notebook_cell(obj, lesson, lesson.cell(c.cell).line());
    obj.insert("verdict".into(), json!(c.verdict));
    obj.insert("duration_ms".into(), json!(millis(c.duration)));
    if c.cached {
        obj.insert("cached".into(), json!(true));
    }
    put(
        obj,
        "message",
        cell_message(lesson, c, ENGLISH).map(Value::from),
    );
    put(obj, "diff", c.diff.clone().map(Value::from));
    put(
        obj,
        "stderr",
        c.stderr
            .clone()
            .filter(|_| !c.verdict.passed())
            .map(Value::from),
    );
    put(
        obj,
        "compile_errors",
        compile_errors(c.diagnostics.iter(), lesson),
    );
}

fn plain_cell(p: &PlainResult, lesson: &Lesson) -> Value {
    let mut obj = Map::new();
    cell_fields(&mut obj, &p.result, lesson);
    Value::Object(obj)
}

fn exercise_cell(c: &CellResult, lesson: &Lesson) -> Value {
    let mut obj = Map::new();
    match c.role {
        Some(Role::Client(k)) => {
            obj.insert("role".into(), json!("client"));
            obj.insert("index".into(), json!(k + 1));
        }
        _ => {
            obj.insert("role".into(), json!("server"));
        }
    }
    if lesson.cell(c.cell).is_hidden() {
        obj.insert("hidden".into(), json!(true));
    }
    // (1.2) The faults a client ran under, as the lesson writes them, and
    // in words: a hidden client's too, so a student knows why it failed.
    let wire = lesson.cell(c.cell).wire();
    if !wire.is_empty() {
        obj.insert(
            "wire".into(),
            json!(wire.iter().map(ToString::to_string).collect::<Vec<_>>()),
        );
        obj.insert(
            "wire_described".into(),
            json!(wire.iter().map(|f| f.describe(ENGLISH)).collect::<Vec<_>>()),
        );
    }
    cell_fields(&mut obj, c, lesson);
    Value::Object(obj)
}

fn exercise(e: &ExerciseResult, lesson: &Lesson) -> Value {
    let ex = lesson.exercise(&e.id);
    let mut obj = Map::new();
    obj.insert("id".into(), json!(e.id));
    if let Some(ex) = ex {
        obj.insert("name".into(), json!(UnitId::exercise(lesson, ex)));
        obj.insert("line".into(), json!(ex.line));
        notebook_cell(&mut obj, lesson, ex.line);
    }
    obj.insert("verdict".into(), json!(e.verdict));
    obj.insert("points".into(), json!(e.points));
    obj.insert("score".into(), json!(e.score()));
    obj.insert("duration_ms".into(), json!(millis(e.duration)));
    if e.cached {
        obj.insert("cached".into(), json!(true));
    }
    put(
        &mut obj,
        "message",
        exercise_message(lesson, e, ENGLISH).map(Value::from),
    );
    put(&mut obj, "diff", e.diff().map(Value::from));
    put(&mut obj, "stderr", e.stderr().map(Value::from));
    let failed = !e.verdict.passed();
    put(
        &mut obj,
        "wire",
        e.wire.as_deref().filter(|_| failed).map(super::wire::json),
    );
    put(
        &mut obj,
        "compile_errors",
        compile_errors(e.diagnostics(), lesson),
    );
    obj.insert(
        "cells".into(),
        e.cells.iter().map(|c| exercise_cell(c, lesson)).collect(),
    );
    put(&mut obj, "hint", super::hint(ex, e).map(Value::from));
    Value::Object(obj)
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

/// The whole report.
pub fn report(finished: &Finished, lessons: &[&Lesson]) -> Value {
    let lessons_json: Vec<Value> = finished
        .results
        .iter()
        .zip(lessons)
        .map(|(r, lesson)| {
            // `cells` holds the plain cells with an output block, as the
            // contract says; a failing plain cell without one is reported in
            // the added field `unchecked_cell_failures`, so it is not lost.
            let cells: Vec<Value> = r
                .cells
                .iter()
                .filter(|c| c.checked)
                .map(|c| plain_cell(c, lesson))
                .collect();
            let unchecked: Vec<Value> = r
                .cells
                .iter()
                .filter(|c| !c.checked && !c.result.verdict.passed())
                .map(|c| plain_cell(c, lesson))
                .collect();
            let mut obj = json!({
                "path": r.path.display().to_string(),
                "cells": cells,
                "exercises": r.exercises.iter().map(|e| exercise(e, lesson)).collect::<Vec<_>>(),
            });
            if !unchecked.is_empty() {
                obj["unchecked_cell_failures"] = Value::Array(unchecked);
            }
            obj
        })
        .collect();
    json!({
        "lessons": lessons_json,
        "summary": Summary::of(&finished.results),
        "runner": { "contexts_started": finished.contexts_started },
    })
}

// The report read back. The types follow what `report` writes: a field it
// always writes is required, so a report that lacks one is refused with
// serde's words instead of read as empty; one it leaves out when there is
// nothing to say is an `Option`, and goes back out only when it came in;
// one it writes as `null` is an `Option` written always. What no reader
// needs stays in `rest`, whole, so `aula merge` passes on what it does not
// know (an aula newer than this one may have written it); lessons and the
// top level are rebuilt by merge, so they keep nothing they do not name.

/// A report, as `aula merge`, JUnit and GitHub read it.
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
/// exercise's cell (`role`, `index` and the rest are then in `rest`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CellReport {
    pub line: u64,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Written only as `true`; an `Option`, so a merge writes what came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_errors: Option<Vec<CompileError>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_described: Option<Vec<String>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl CellReport {
    pub fn is_hidden(&self) -> bool {
        self.hidden == Some(true)
    }
}

/// An exercise; its `message`, `diff`, `hint`, `wire` and the rest are in
/// `rest`, since its cells say what the readers need.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExerciseReport {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<UnitId>,
    pub line: u64,
    pub verdict: Verdict,
    pub points: u64,
    pub score: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Absent from reports of format 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<Vec<CellReport>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A compiler error, in a cell's `compile_errors`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CompileError {
    /// `null` where the error is in code the lesson does not show (the
    /// writer writes the field always, so it is written back always).
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub column: Option<u64>,
    pub message: String,
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
            let mut value = report(finished, lessons);
            if let Some(run) = &self.run {
                value["run"] = serde_json::to_value(run).unwrap_or_default();
            }
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
