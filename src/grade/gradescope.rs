//! `aula grade --gradescope FILE`: one student's grade as Gradescope's
//! autograder `results.json` (its "autograder specifications": a top-level
//! `score`, `execution_time`, `output` and `tests`, each test with `name`,
//! `score`, `max_score`, `status`, `output` and `visibility`). Gradescope
//! runs an autograder once per submission, so this is one student's.
//!
//! A check is a test worth its share of the exercise's points, with what
//! `grades.json` says of it (message, compiler errors, diff: already
//! withheld where hidden tests ran alongside). Each hidden test is a test
//! of its own worth nothing, shown once grades are published, by its
//! number and verdict only: never its input or expected output.

use serde_json::{Value, json};

use super::{CheckGrade, ExerciseGrade, StudentGrade};

/// The `results.json` of `grade`, graded in `seconds`.
pub fn results(grade: &StudentGrade, seconds: f64) -> Value {
    let mut tests = Vec::new();
    for e in &grade.exercises {
        let share = f64::from(e.points) / e.checks.len().max(1) as f64;
        for c in &e.checks {
            tests.push(check_test(e, c, share));
            tests.extend(c.tests.iter().filter(|t| t.hidden).map(|t| {
                json!({
                    "name": format!("{}: {}: {}", e.id, c.check, t.test),
                    "score": 0,
                    "max_score": 0,
                    "status": status(t.verdict.passed()),
                    "output": format!("verdict: {}", t.verdict.as_str()),
                    "visibility": "after_published",
                })
            }));
        }
    }
    let mut output = format!(
        "aula grade: {} of {} points",
        super::output::number(grade.score),
        grade.max_score
    );
    for e in &grade.errors {
        output.push('\n');
        output.push_str(e);
    }
    json!({
        "score": super::round2(grade.score),
        "execution_time": seconds.round() as u64,
        "output": output,
        "tests": tests,
    })
}

fn check_test(e: &ExerciseGrade, c: &CheckGrade, share: f64) -> Value {
    let parts = [&c.message, &c.compiler, &c.diff];
    let output: Vec<&str> = parts.iter().filter_map(|p| p.as_deref()).collect();
    let output = match output.is_empty() {
        true => format!("verdict: {}", c.verdict),
        false => format!("verdict: {}\n{}", c.verdict, output.join("\n")),
    };
    json!({
        "name": format!("{}: {}", e.id, c.check),
        "score": super::round2(if c.passed() { share } else { 0.0 }),
        "max_score": super::round2(share),
        "status": status(c.passed()),
        "output": output,
        "visibility": "visible",
    })
}

fn status(passed: bool) -> &'static str {
    if passed { "passed" } else { "failed" }
}
