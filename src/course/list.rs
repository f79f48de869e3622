//! `aula list`: every lesson and exercise of a course with its status and
//! points, as text for a person or as JSON.

use std::fmt::Write as _;

use super::Course;
use super::watch::status_word;

/// The course as JSON: lessons with their exercises, the current one, and
/// how many are done. Ends with a newline.
pub fn json(course: &Course) -> String {
    let lessons: Vec<serde_json::Value> = course
        .lessons
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let exercises: Vec<serde_json::Value> = course
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.lesson == li)
                .map(|(i, e)| {
                    let ex = course.exercise_of(i);
                    serde_json::json!({
                        "id": ex.id,
                        "name": e.unit,
                        "line": ex.line,
                        "status": course.status(i).as_str(),
                        "points": ex.points,
                    })
                })
                .collect();
            serde_json::json!({ "path": l.path.display().to_string(), "exercises": exercises })
        })
        .collect();
    let report = serde_json::json!({
        "lessons": lessons,
        "current": course.current().map(|i| course.entries[i].unit.clone()),
        "summary": { "exercises": course.entries.len(), "done": course.done() },
    });
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

/// The course as text in `lang`: each lesson's path, then a line per
/// exercise (`>` marks the current one), then how many are done.
pub fn human(course: &Course, lang: &str) -> String {
    let mut out = String::new();
    let current = course.current();
    for (li, l) in course.lessons.iter().enumerate() {
        let _ = writeln!(out, "{}", l.path.display());
        for (i, _) in course
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.lesson == li)
        {
            let ex = course.exercise_of(i);
            let mark = if Some(i) == current { ">" } else { " " };
            let status = status_word(course.status(i), lang);
            let points = rust_i18n::t!("list.points", locale = lang, n = ex.points);
            let _ = writeln!(out, "{mark} {status:<12} {:<28} {points}", ex.id);
        }
    }
    let done = rust_i18n::t!(
        "watch.progress",
        locale = lang,
        done = course.done(),
        total = course.entries.len()
    );
    let _ = writeln!(out, "\n{done}");
    out
}
