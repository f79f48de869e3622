//! The JSON report of REPORT-FORMAT.md (version 1). Fields may be added to
//! it; the ones the contract names keep their names and meanings.

use serde_json::{Map, Value, json};

use crate::lesson::Lesson;
use crate::outcome::{CellResult, ExerciseResult, Failure, LessonResult, Summary, Verdict};

fn millis(d: std::time::Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn put_failure(obj: &mut Map<String, Value>, failure: Option<&Failure>, lesson: Option<&Lesson>) {
    let Some(f) = failure else { return };
    if !f.message.is_empty() {
        obj.insert("message".into(), json!(f.message));
    }
    if let Some(diff) = &f.diff {
        obj.insert("diff".into(), json!(diff));
    }
    if let Some(stderr) = &f.stderr {
        obj.insert("stderr".into(), json!(stderr));
    }
    if !f.diagnostics.is_empty() {
        let errors: Vec<Value> = f
            .diagnostics
            .iter()
            .map(|d| {
                let mut e = json!({
                    "message": d.message,
                    "code": d.code,
                    "line": d.line,
                    "column": d.column,
                });
                if let Some(lesson) = lesson {
                    e["rendered"] = json!(super::render_diagnostic(d, lesson));
                }
                e
            })
            .collect();
        obj.insert("compile_errors".into(), Value::Array(errors));
    }
}

fn cell(c: &CellResult, lesson: Option<&Lesson>) -> Value {
    let mut obj = Map::new();
    obj.insert("line".into(), json!(c.line));
    obj.insert("verdict".into(), json!(c.verdict));
    obj.insert("duration_ms".into(), json!(millis(c.duration)));
    if c.cached {
        obj.insert("cached".into(), json!(true));
    }
    put_failure(&mut obj, c.failure.as_ref(), lesson);
    Value::Object(obj)
}

fn exercise(e: &ExerciseResult, lesson: Option<&Lesson>) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), json!(e.id));
    obj.insert("line".into(), json!(e.line));
    obj.insert("verdict".into(), json!(e.verdict));
    obj.insert("points".into(), json!(e.points));
    obj.insert("score".into(), json!(e.score()));
    obj.insert("duration_ms".into(), json!(millis(e.duration)));
    if e.cached {
        obj.insert("cached".into(), json!(true));
    }
    put_failure(&mut obj, e.failure.as_ref(), lesson);
    Value::Object(obj)
}

/// The whole report. `lessons` gives the source for rendering compile errors;
/// it is matched to results by path.
pub fn report(results: &[LessonResult], lessons: &[Lesson]) -> Value {
    let lessons_json: Vec<Value> = results
        .iter()
        .map(|r| {
            let lesson = lessons.iter().find(|l| l.path == r.path);
            // `cells` holds the plain cells with an output block, as the
            // contract says; a failing plain cell without one is reported in
            // the added field `unchecked_cell_failures`, so it is not lost.
            let cells: Vec<Value> = r
                .cells
                .iter()
                .filter(|c| c.checked)
                .map(|c| cell(c, lesson))
                .collect();
            let unchecked: Vec<Value> = r
                .cells
                .iter()
                .filter(|c| !c.checked && c.verdict != Verdict::Pass)
                .map(|c| cell(c, lesson))
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
        "summary": Summary::of(results),
    })
}
