//! What an instructor sees: a progress bar while the batch runs (on a
//! terminal), then a table of students and exercises, what failed, and
//! where the files went.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use rust_i18n::t;

use super::{Graded, StudentGrade};

pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(total: usize, lang: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(t!("grade.progress", locale = lang).into_owned());
            bar
        });
        Progress { bar }
    }

    pub fn done(&self, g: &Graded) {
        let line = format!(
            "{} {} {}/{}",
            g.grade.student,
            g.grade.status,
            super::output::number(g.grade.score),
            g.grade.max_score
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The students × exercises table, then each check that did not pass.
pub fn table(exercises: &[String], grades: &[StudentGrade], lang: &str) -> String {
    let ids: Vec<&str> = exercises.iter().map(String::as_str).collect();
    let mut header = vec![
        t!("grade.table_student", locale = lang).into_owned(),
        t!("grade.table_status", locale = lang).into_owned(),
        t!("grade.table_score", locale = lang).into_owned(),
    ];
    header.extend(ids.iter().map(|s| s.to_string()));
    let mut rows = vec![header];
    for g in grades {
        let mut row = vec![
            g.student.clone(),
            g.status.to_string(),
            format!("{}/{}", super::output::number(g.score), g.max_score),
        ];
        for id in &ids {
            let e = g.exercises.iter().find(|e| e.id == *id);
            row.push(e.map_or("-".to_owned(), |e| {
                format!("{}/{}", super::output::number(e.score), e.points)
            }));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    let failures: Vec<String> = grades
        .iter()
        .flat_map(|g| {
            let errors = g.errors.iter().map(move |e| format!("{}: {e}", g.student));
            let checks = g.exercises.iter().flat_map(move |e| {
                e.checks.iter().filter(|c| !c.passed()).map(move |c| {
                    // The messages are `grades.json`'s, in English; in
                    // another language the feedback file has them.
                    let message = match lang == crate::i18n::ENGLISH {
                        true => c.message.clone().unwrap_or_default(),
                        false => t!(
                            "grade.see_feedback",
                            locale = lang,
                            path = format!("feedback/{}.md", g.student)
                        )
                        .into_owned(),
                    };
                    let check = crate::report::words("check", c.check.as_str(), lang);
                    let verdict = crate::report::verdict_word(c.verdict.as_str(), lang);
                    format!("{} {} {check}: {verdict} {message}", g.student, e.id)
                })
            });
            errors.chain(checks)
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n{}", t!("grade.failures", locale = lang));
        for f in failures {
            let _ = writeln!(out, "  {}", f.trim_end());
        }
    }
    out
}
