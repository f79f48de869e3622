//! `aula merge`: the JSON reports of a run's shards, made into the report
//! one unsharded run would have printed (durations aside). Pure code over
//! JSON values, once [`read`] has read the shards' files.

use std::collections::BTreeSet;

use serde_json::{Value, json};

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// The shards' JSON reports, read from `paths`; the first that cannot be
/// read or parsed, as `path: why`.
pub fn read(paths: &[std::path::PathBuf]) -> Result<Vec<Value>, String> {
    let mut reports = Vec::new();
    for path in paths {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) => reports.push(v),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(reports)
}

/// Merges shard reports, or says why they cannot be merged: different
/// aula versions or inputs, shards that overlap, or units no shard ran.
pub fn reports(shards: &[Value]) -> Result<Value, String> {
    let first = shards.first().ok_or("no reports to merge")?;
    let run = &first["run"];
    if !run.is_object() {
        return Err(
            "the first report has no `run` field: was it made by `aula run --format json`?".into(),
        );
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (i, shard) in shards.iter().enumerate() {
        let r = &shard["run"];
        for field in ["aula", "inputs"] {
            if r[field] != run[field] {
                return Err(format!(
                    "report {} comes from other {} than report 1 ({} against {}); shards must come from one run",
                    i + 1,
                    if field == "aula" {
                        "aula version"
                    } else {
                        "inputs"
                    },
                    r[field],
                    run[field]
                ));
            }
        }
        for unit in strings(&r["units"]) {
            if !seen.insert(unit.clone()) {
                return Err(format!(
                    "`{unit}` is in more than one report: the shards overlap"
                ));
            }
        }
    }
    let all_units = strings(&run["all_units"]);
    if let Some(missing) = all_units.iter().find(|u| !seen.contains(*u)) {
        return Err(format!("no report has `{missing}`: a shard is missing"));
    }

    let mut lessons = Vec::new();
    for path in all_lessons(shards) {
        let parts: Vec<&Value> = shards
            .iter()
            .flat_map(|s| s["lessons"].as_array().into_iter().flatten())
            .filter(|l| l["path"] == path.as_str())
            .collect();
        let plain_unit = format!("{path}::(cells)");
        // The plain cells come from the shard that reported them.
        let owner = shards
            .iter()
            .position(|s| strings(&s["run"]["units"]).contains(&plain_unit));
        let plain = owner.and_then(|o| {
            shards[o]["lessons"]
                .as_array()?
                .iter()
                .find(|l| l["path"] == path.as_str())
        });
        let mut exercises: Vec<Value> = parts
            .iter()
            .flat_map(|l| l["exercises"].as_array().cloned().unwrap_or_default())
            .collect();
        exercises.sort_by_key(|e| e["line"].as_u64().unwrap_or(0));
        let mut lesson = json!({
            "path": path,
            "cells": plain.map_or(json!([]), |p| p["cells"].clone()),
            "exercises": exercises,
        });
        if let Some(u) = plain.and_then(|p| p.get("unchecked_cell_failures")) {
            lesson["unchecked_cell_failures"] = u.clone();
        }
        lessons.push(lesson);
    }
    let exercises: Vec<&Value> = lessons
        .iter()
        .flat_map(|l| l["exercises"].as_array().into_iter().flatten())
        .collect();
    let passed = exercises.iter().filter(|e| e["verdict"] == "pass").count();
    let sum = |key: &str| -> u64 { exercises.iter().filter_map(|e| e[key].as_u64()).sum() };
    let contexts: u64 = shards
        .iter()
        .filter_map(|s| s["runner"]["contexts_started"].as_u64())
        .sum();
    let mut run = run.clone();
    run["partition"] = Value::Null;
    run["units"] = json!(all_units);
    run["lessons"] = json!(all_lessons(shards));
    Ok(json!({
        "lessons": lessons,
        "summary": {
            "exercises": exercises.len(),
            "passed": passed,
            "failed": exercises.len() - passed,
            "score": sum("score"),
            "max_score": sum("points"),
        },
        "runner": { "contexts_started": contexts },
        "run": run,
    }))
}

/// Lessons in run order: those of the unsharded run, as the units name them.
fn all_lessons(shards: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for unit in strings(&shards[0]["run"]["all_units"]) {
        let lesson = unit
            .rsplit_once("::")
            .map_or(unit.clone(), |(l, _)| l.to_owned());
        if !out.contains(&lesson) {
            out.push(lesson);
        }
    }
    out
}

/// Whether every reported plain cell passed.
pub fn cells_passed(report: &Value) -> bool {
    report["lessons"].as_array().into_iter().flatten().all(|l| {
        l["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                l["unchecked_cell_failures"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .all(|c| c["verdict"] == "pass")
    })
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
}
