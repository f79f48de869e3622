//! `aula grade --compare OLD_DIR`: after a regrade (a reference fixed after
//! the first batch), the students whose score changed against the
//! gradebook in `OLD_DIR`, with the checks whose verdict changed.
//!
//! Both gradebooks are read as `grades.json` says them (GRADE-FORMAT.md),
//! so a gradebook from an earlier aula compares as well as one from now.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// What a comparison needs of `grades.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Book {
    pub students: Vec<Student>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Student {
    pub student: String,
    pub score: f64,
    #[serde(default)]
    pub exercises: Vec<Exercise>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Exercise {
    pub id: String,
    #[serde(default)]
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    pub check: String,
    pub verdict: String,
}

impl Student {
    /// Each check's verdict, by `exercise/check`.
    fn verdicts(&self) -> BTreeMap<String, String> {
        self.exercises
            .iter()
            .flat_map(|e| {
                e.checks
                    .iter()
                    .map(move |c| (format!("{}/{}", e.id, c.check), c.verdict.clone()))
            })
            .collect()
    }
}

/// Reads `DIR/grades.json`.
pub fn read(dir: &Path) -> Result<Book, String> {
    let path = dir.join("grades.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a gradebook: {e}", path.display()))
}

/// A student whose score changed; a score is `None` where the student is
/// in one gradebook only.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub student: String,
    pub old_score: Option<f64>,
    pub new_score: Option<f64>,
    /// `exercise/check: old → new`, in order.
    pub checks: Vec<String>,
}

/// The students whose score differs between `old` and `new`, by name.
pub fn changes(old: &Book, new: &Book) -> Vec<Change> {
    let by_name = |b: &Book| -> BTreeMap<String, Student> {
        b.students
            .iter()
            .map(|s| (s.student.clone(), s.clone()))
            .collect()
    };
    let (old, new) = (by_name(old), by_name(new));
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (o, n) = (old.get(name), new.get(name));
        let (os, ns) = (o.map(|s| s.score), n.map(|s| s.score));
        let same = matches!((os, ns), (Some(a), Some(b)) if (a - b).abs() < 0.005);
        if same {
            continue;
        }
        out.push(Change {
            student: name.clone(),
            old_score: os,
            new_score: ns,
            checks: changed_checks(o, n),
        });
    }
    out
}

fn changed_checks(old: Option<&Student>, new: Option<&Student>) -> Vec<String> {
    let (o, n) = (
        old.map(Student::verdicts).unwrap_or_default(),
        new.map(Student::verdicts).unwrap_or_default(),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = "-".to_owned();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                o.get(k).unwrap_or(&none),
                n.get(k).unwrap_or(&none)
            )
        })
        .collect()
}

fn score(s: Option<f64>) -> String {
    s.map(super::output::number).unwrap_or_default()
}

/// `changes.csv`: `student,old_score,new_score,changed_checks` (the checks
/// joined with `; `).
pub fn csv(changes: &[Change]) -> String {
    let mut out = String::from("student,old_score,new_score,changed_checks\n");
    for c in changes {
        out.push_str(&format!(
            "{},{},{},{}\n",
            super::output::csv_field(&c.student),
            score(c.old_score),
            score(c.new_score),
            super::output::csv_field(&c.checks.join("; "))
        ));
    }
    out
}

/// The table a person reads after a regrade.
pub fn table(changes: &[Change], old_dir: &Path, lang: &str) -> String {
    if changes.is_empty() {
        return format!(
            "{}\n",
            rust_i18n::t!("compare.none", locale = lang, old = old_dir.display())
        );
    }
    let mut out = format!(
        "{}\n",
        rust_i18n::t!(
            "compare.header",
            locale = lang,
            n = changes.len(),
            old = old_dir.display()
        )
    );
    let width = changes.iter().map(|c| c.student.len()).max().unwrap_or(0);
    for c in changes {
        out.push_str(&format!(
            "  {:width$}  {:>6} → {:<6}  {}\n",
            c.student,
            score(c.old_score),
            score(c.new_score),
            c.checks.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(text: &str) -> Book {
        serde_json::from_str(text).unwrap()
    }

    const OLD: &str = r#"{"students": [
        {"student": "ana", "score": 1, "exercises": [{"id": "eco", "checks": [
            {"check": "server", "verdict": "pass"}, {"check": "client", "verdict": "mismatch"}]}]},
        {"student": "bia", "score": 2, "exercises": [{"id": "eco", "checks": [
            {"check": "server", "verdict": "pass"}, {"check": "client", "verdict": "pass"}]}]},
        {"student": "caio", "score": 0.5, "exercises": []}
    ]}"#;

    const NEW: &str = r#"{"students": [
        {"student": "ana", "score": 2, "exercises": [{"id": "eco", "checks": [
            {"check": "server", "verdict": "pass"}, {"check": "client", "verdict": "pass"}]}]},
        {"student": "bia", "score": 2, "exercises": [{"id": "eco", "checks": [
            {"check": "server", "verdict": "pass"}, {"check": "client", "verdict": "pass"}]}]},
        {"student": "duda", "score": 1, "exercises": []}
    ]}"#;

    #[test]
    fn only_students_whose_score_changed_are_listed_with_their_checks() {
        let c = changes(&book(OLD), &book(NEW));
        let names: Vec<&str> = c.iter().map(|c| c.student.as_str()).collect();
        assert_eq!(names, ["ana", "caio", "duda"]);
        assert_eq!(c[0].checks, ["eco/client: mismatch → pass"]);
        assert_eq!(c[1].new_score, None);
        assert_eq!(c[2].old_score, None);
        assert_eq!(
            csv(&c),
            "student,old_score,new_score,changed_checks\n\
             ana,1,2,eco/client: mismatch → pass\n\
             caio,0.5,,\n\
             duda,,1,\n"
        );
        let table = table(&c, Path::new("old"), "en");
        assert!(table.contains("3 students"), "{table}");
    }

    #[test]
    fn nothing_changed_says_so() {
        let c = changes(&book(NEW), &book(NEW));
        assert!(c.is_empty());
        assert!(table(&c, Path::new("old"), "en").contains("No score changed"));
    }
}
