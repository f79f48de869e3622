//! `aula merge`: the JSON reports of a run's shards, made into the report
//! one unsharded run would have printed (durations aside). Pure code over
//! typed reports ([`Report`]), once [`read`] has read the shards' files.
//!
//! Merge reads of a shard only what puts shards together (its `run`, its
//! lessons' paths, its exercises' lines and verdicts); each exercise and
//! plain cell goes on whole, fields this aula does not know included.

use std::collections::BTreeSet;

use serde_json::json;
// The tests below write shards as JSON values.
#[cfg(test)]
use serde_json::Value;

use crate::outcome::Verdict;
use crate::plan::UnitId;
use crate::report::json::{LessonReport, Report, RunRecord, Runner, Totals};

/// A shard's report as merge reads it. Its summary is left unread: merge
/// counts the exercises again.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Shard {
    pub lessons: Vec<LessonReport>,
    #[serde(default)]
    pub runner: Option<Runner>,
    #[serde(default)]
    pub run: Option<RunRecord>,
}

/// The shards' JSON reports, read from `paths`; the first that cannot be
/// read or parsed, or lacks a field, as `path: why`.
pub fn read(paths: &[std::path::PathBuf]) -> Result<Vec<Shard>, String> {
    let mut reports = Vec::new();
    for path in paths {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Shard>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => reports.push(v),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(reports)
}

/// Merges shard reports, or says why they cannot be merged: different
/// aula versions or inputs, shards that overlap, or units no shard ran.
pub fn merge(shards: &[Shard]) -> Result<Report, String> {
    let run = checked(shards)?;
    let lessons: Vec<LessonReport> = all_lessons(run)
        .into_iter()
        .map(|path| lesson(shards, path))
        .collect();
    let exercises = || lessons.iter().flat_map(|l| &l.exercises);
    let count = exercises().count() as u64;
    let passed = exercises().filter(|e| e.verdict == Verdict::Pass).count() as u64;
    let contexts_started = shards
        .iter()
        .filter_map(|s| s.runner.map(|r| r.contexts_started))
        .sum();
    let summary = Totals {
        exercises: count,
        passed,
        failed: count - passed,
        score: exercises().map(|e| e.score).sum(),
        max_score: exercises().map(|e| e.points).sum(),
    };
    let mut run = run.clone();
    run.info.partition = None;
    run.info.units = run.info.all_units.clone();
    run.info.lessons = all_lessons(&run);
    Ok(Report {
        lessons,
        summary,
        runner: Some(Runner { contexts_started }),
        run: Some(run),
    })
}

/// The first shard's `run`, once every shard is known to come from the
/// same run as it, none overlaps another, and together they have every
/// unit.
fn checked(shards: &[Shard]) -> Result<&RunRecord, String> {
    let first = shards.first().ok_or("no reports to merge")?;
    let Some(run) = &first.run else {
        return Err(
            "the first report has no `run` field: was it made by `aula run --format json`?".into(),
        );
    };
    let mut seen: BTreeSet<&UnitId> = BTreeSet::new();
    for (i, shard) in shards.iter().enumerate() {
        let theirs = shard.run.as_ref().map(|r| &r.info);
        let fields = [
            ("aula version", theirs.map(|r| &r.aula), &run.info.aula),
            ("inputs", theirs.map(|r| &r.inputs), &run.info.inputs),
        ];
        for (what, theirs, ours) in fields {
            if theirs != Some(ours) {
                // As JSON, as the reports have them: `null` for none.
                return Err(format!(
                    "report {} comes from other {what} than report 1 ({} against {}); shards must come from one run",
                    i + 1,
                    json!(theirs),
                    json!(ours),
                ));
            }
        }
        for unit in theirs.into_iter().flat_map(|r| &r.units) {
            if !seen.insert(unit) {
                return Err(format!(
                    "`{unit}` is in more than one report: the shards overlap"
                ));
            }
        }
    }
    if let Some(missing) = run.info.all_units.iter().find(|u| !seen.contains(u)) {
        return Err(format!("no report has `{missing}`: a shard is missing"));
    }
    Ok(run)
}

/// The lesson at `path`, from every shard that ran part of it: its
/// exercises in line order, and its plain cells from the shard that
/// reported them.
fn lesson(shards: &[Shard], path: String) -> LessonReport {
    let parts = || {
        shards
            .iter()
            .flat_map(|s| &s.lessons)
            .filter(|l| l.path == path)
    };
    let plain_unit = UnitId::plain_of(&path);
    let plain = shards
        .iter()
        .find(|s| {
            s.run
                .as_ref()
                .is_some_and(|r| r.info.units.contains(&plain_unit))
        })
        .and_then(|s| s.lessons.iter().find(|l| l.path == path));
    let mut exercises: Vec<_> = parts().flat_map(|l| l.exercises.iter().cloned()).collect();
    exercises.sort_by_key(|e| e.line);
    LessonReport {
        cells: plain.map_or_else(Vec::new, |p| p.cells.clone()),
        unchecked_cell_failures: plain.and_then(|p| p.unchecked_cell_failures.clone()),
        exercises,
        path,
    }
}

/// Lessons in run order: those of the unsharded run, as the units name them.
fn all_lessons(run: &RunRecord) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for unit in &run.info.all_units {
        if !out.iter().any(|l| l == unit.lesson()) {
            out.push(unit.lesson().to_owned());
        }
    }
    out
}

/// Whether every reported plain cell passed.
pub fn cells_passed(report: &Report) -> bool {
    report.lessons.iter().all(|l| {
        l.cells
            .iter()
            .chain(l.unchecked_cell_failures.iter().flatten())
            .all(|c| c.verdict == Verdict::Pass)
    })
}

/// [`merge`] of shards written as JSON values, as the tests below write
/// them: each read as [`read`] reads a file, the merged report given back
/// as JSON.
#[cfg(test)]
fn reports(values: &[Value]) -> Result<Value, String> {
    let shards: Vec<Shard> = values
        .iter()
        .map(|v| serde::Deserialize::deserialize(v).map_err(|e: serde_json::Error| e.to_string()))
        .collect::<Result<_, _>>()?;
    merge(&shards).map(|r| r.to_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(partition: &str, units: &[&str], lessons: Value) -> Value {
        json!({
            "lessons": lessons,
            "summary": {},
            "run": { "aula": "0.1.0", "inputs": "abc", "partition": partition,
                     "all_units": ["a.md::(cells)", "a.md::x", "a.md::y", "b.md::z"],
                     "units": units },
        })
    }

    fn ex(id: &str, line: u64, verdict: &str) -> Value {
        let score = u64::from(verdict == "pass");
        json!({ "id": id, "line": line, "verdict": verdict, "points": 1, "score": score })
    }

    #[test]
    fn shards_merge_in_lesson_order_and_overlaps_are_refused() {
        let one = shard(
            "slice:1/2",
            &["a.md::(cells)", "a.md::y"],
            json!([{ "path": "a.md", "cells": [{ "line": 1, "verdict": "pass" }],
                     "exercises": [ex("y", 20, "mismatch")] }]),
        );
        let two = shard(
            "slice:2/2",
            &["a.md::x", "b.md::z"],
            json!([{ "path": "a.md", "cells": [], "exercises": [ex("x", 10, "pass")] },
                   { "path": "b.md", "cells": [], "exercises": [ex("z", 5, "pass")] }]),
        );
        let merged = reports(&[two.clone(), one.clone()]).unwrap();
        let ids: Vec<&str> = merged["lessons"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|l| l["exercises"].as_array().unwrap())
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["x", "y", "z"]);
        assert_eq!(merged["lessons"][0]["cells"][0]["line"], 1);
        assert_eq!(
            merged["summary"],
            json!({ "exercises": 3, "passed": 2, "failed": 1, "score": 2, "max_score": 3 })
        );

        let err = reports(&[one.clone(), one.clone()]).unwrap_err();
        assert!(err.contains("overlap"), "{err}");
        let err = reports(std::slice::from_ref(&one)).unwrap_err();
        assert!(err.contains("a shard is missing"), "{err}");
        let mut other = two.clone();
        other["run"]["inputs"] = json!("def");
        let err = reports(&[one, other]).unwrap_err();
        assert!(err.contains("other inputs"), "{err}");
    }

    #[test]
    fn lessons_whose_paths_hold_the_separator_keep_their_whole_path() {
        let mut run = shard("slice:1/1", &[], json!([]));
        run["run"]["all_units"] = json!(["x::a.md::(cells)", "x::a.md::e", "b.md::f"]);
        let shard: Shard = serde::Deserialize::deserialize(&run).unwrap();
        let lessons = all_lessons(shard.run.as_ref().unwrap());
        assert_eq!(lessons, vec!["x::a.md", "b.md"]);
        run["run"]["units"] = json!(["no-separator"]);
        let err = reports(&[run]).unwrap_err();
        assert!(err.contains("not a unit"), "{err}");
    }
}
