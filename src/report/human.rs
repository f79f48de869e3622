//! The report for people: a line per cell and exercise as it finishes (with
//! a progress bar on a terminal), then each failure in full (diff or
//! compiler message, and the hint), then a summary. Colour goes through
//! `anstream`, which drops it when stdout is not a terminal or `NO_COLOR` is
//! set.

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rust_i18n::t;

use super::{Event, Reporter, cell_message, exercise_message, render_diagnostic};
use crate::lesson::Lesson;
use crate::outcome::Finished;
use crate::outcome::{CellResult, Summary, Verdict};

const GREEN: Style = AnsiColor::Green.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();
const CYAN: Style = AnsiColor::Cyan.on_default();

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn badge(v: Verdict, lang: &str) -> String {
    let (pass, fail) = (
        t!("human.pass", locale = lang),
        t!("human.fail", locale = lang),
    );
    // Both words take the same room, so the exercises' names line up
    // (`OK` and `FALHA` differ in Portuguese).
    let width = pass.chars().count().max(fail.chars().count());
    if v.passed() {
        format!("{GREEN}{pass:<width$}{GREEN:#}")
    } else {
        format!("{RED}{fail:<width$}{RED:#}")
    }
}

pub struct Human<W: Write> {
    out: W,
    /// Shown on a terminal while exercises compile and run.
    progress: Option<ProgressBar>,
    /// The lesson whose header was printed last.
    current: Option<PathBuf>,
    /// `en` or `pt`.
    lang: &'static str,
}

impl Human<anstream::AutoStream<std::io::Stdout>> {
    pub fn stdout() -> Self {
        let progress = std::io::stdout()
            .is_terminal()
            .then(|| ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()));
        Human {
            out: anstream::stdout(),
            progress,
            current: None,
            lang: crate::i18n::from_env(),
        }
    }
}

impl<W: Write> Human<W> {
    pub fn new(out: W, lang: &'static str) -> Self {
        Human {
            out,
            progress: None,
            current: None,
            lang,
        }
    }

    /// Prints a line above the progress bar.
    fn line(&mut self, text: String) {
        match &self.progress {
            Some(bar) => bar.suspend(|| {
                let _ = writeln!(self.out, "{text}");
                let _ = self.out.flush();
            }),
            None => {
                let _ = writeln!(self.out, "{text}");
                let _ = self.out.flush();
            }
        }
    }

    fn header(&mut self, lesson: &Lesson) {
        if self.current.as_ref() != Some(&lesson.path) {
            self.current = Some(lesson.path.clone());
            self.line(format!("{BOLD}{}{BOLD:#}", lesson.path.display()));
        }
    }

    /// Every failure in full, then the summary line.
    fn finish(&mut self, finished: &Finished, lessons: &[&Lesson]) {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        let lang = self.lang;
        let out = &mut self.out;
        for (result, lesson) in finished.results.iter().zip(lessons) {
            for c in &result.cells {
                let r = &c.result;
                if r.verdict.passed() {
                    continue;
                }
                let _ = writeln!(out);
                let _ = plain_details(out, lesson, r, lang);
            }
            for e in &result.exercises {
                if e.verdict.passed() {
                    continue;
                }
                let line = lesson.exercise(&e.id).map_or(0, |x| x.line);
                let place = lesson.source.at(line);
                let title = t!("human.exercise_at", locale = lang, id = e.id, place = place);
                let _ = writeln!(out);
                let word = super::verdict_word(e.verdict.as_str(), lang);
                let _ = writeln!(out, "{RED}──── {title}: {word}{RED:#}");
                let _ = exercise_details(out, lesson, e, lang, true);
            }
        }
        let results = &finished.results;
        let s = Summary::of(results);
        let cells: Vec<_> = results.iter().flat_map(|r| &r.cells).collect();
        let cells_failed = cells.iter().filter(|c| !c.result.verdict.passed()).count();
        let checked = cells.iter().filter(|c| c.checked).count();
        let _ = writeln!(out);
        let style = if finished.all_passed() { GREEN } else { RED };
        let summary = t!(
            "human.summary",
            locale = lang,
            n = s.exercises,
            passed = s.passed,
            failed = s.failed
        );
        let score = t!(
            "human.score",
            locale = lang,
            score = s.score,
            max = s.max_score
        );
        let _ = write!(out, "{style}{summary}{style:#}{score}");
        let _ = write!(
            out,
            "{}",
            t!("human.cells_checked", locale = lang, n = checked)
        );
        let cached = results
            .iter()
            .flat_map(|r| r.exercises.iter().map(|e| e.cached))
            .filter(|&c| c)
            .count();
        if cached > 0 {
            let _ = write!(out, "{}", t!("human.from_cache", locale = lang, n = cached));
        }
        if cells_failed > 0 {
            let failed = t!("human.cells_failed", locale = lang, n = cells_failed);
            let _ = write!(out, "{RED}{failed}{RED:#}");
        }
        let _ = writeln!(out, " {DIM}({}){DIM:#}", secs(finished.elapsed));
        let _ = out.flush();
    }
}

impl<W: Write> Reporter for Human<W> {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Started { exercises, .. } => {
                if let Some(bar) = &self.progress {
                    bar.set_length(*exercises as u64);
                    bar.set_style(
                        ProgressStyle::with_template(&format!(
                            "{{spinner}} {{pos}}/{{len}} {} {{wide_bar}} {{elapsed}}",
                            t!("human.progress", locale = self.lang)
                        ))
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
            }
            Event::CellFinished(lesson, p) => {
                self.header(lesson);
                let r = &p.result;
                if p.checked || !r.verdict.passed() {
                    let lang = self.lang;
                    let line = lesson.cell(r.cell).line();
                    let what = match lesson.source.notebook {
                        Some(_) => t!(
                            "human.cell_at",
                            locale = lang,
                            place = lesson.source.place(line)
                        ),
                        None => t!("human.cell_at_line", locale = lang, line = line),
                    };
                    self.line(format!(
                        "  {} {what:<30} {DIM}{}{DIM:#}{}",
                        badge(r.verdict, lang),
                        timing(r.duration, r.cached, lang),
                        verdict_suffix(r.verdict, lang),
                    ));
                }
            }
            Event::ExerciseFinished(lesson, ex) => {
                self.header(lesson);
                self.line(format!(
                    "  {} {:<30} {DIM}{}{DIM:#}{}",
                    badge(ex.verdict, self.lang),
                    ex.id,
                    timing(ex.duration, ex.cached, self.lang),
                    verdict_suffix(ex.verdict, self.lang),
                ));
                if let Some(bar) = &self.progress {
                    bar.inc(1);
                }
            }
            Event::Finished(finished, lessons) => self.finish(finished, lessons),
        }
    }
}

/// Whether the exercise failed on the `todo!()` of a solution region, as a
/// fresh student copy does: the cell, and the region's first and last
/// lines in the lesson (its `BEGIN` and `END` markers).
fn still_to_write<'e>(
    lesson: &Lesson,
    e: &'e crate::outcome::ExerciseResult,
) -> Option<(&'e CellResult, usize, usize)> {
    let Some(crate::outcome::Cause::Panicked {
        line: Some(line),
        message,
        ..
    }) = &e.cause
    else {
        return None;
    };
    // `todo!()`'s message, with or without words of its own.
    if !message.starts_with("not yet implemented") {
        return None;
    }
    let cell = e.cells.get(e.decided_by?)?;
    let c = lesson.cell(cell.cell);
    let region = c
        .regions
        .iter()
        .find(|r| r.begin <= *line && *line <= r.end)?;
    Some((cell, c.line() + region.begin, c.line() + region.end))
}

/// Why an exercise failed: its message, each failing cell's diff or
/// compiler errors, and (with `with_hint`) its hint.
pub fn exercise_details(
    out: &mut impl Write,
    lesson: &Lesson,
    e: &crate::outcome::ExerciseResult,
    lang: &str,
    with_hint: bool,
) -> std::io::Result<()> {
    // An exercise not started yet: what to do, once, and not what follows
    // from it (a client's empty output, the panic's stderr).
    if let Some((cell, from, to)) = still_to_write(lesson, e) {
        let who = super::who(lesson, cell, lang);
        let source = &lesson.cell(cell.cell).origin.source;
        let (from, to) = (source.place(from), source.place(to));
        writeln!(
            out,
            "{}",
            t!("human.todo", locale = lang, who = who, from = from, to = to)
        )?;
    } else {
        if let Some(m) = exercise_message(lesson, e, lang) {
            writeln!(out, "{m}")?;
        }
        for c in &e.cells {
            write_details(out, c, lesson, lang)?;
        }
    }
    if let Some(wire) = e.wire.as_ref().filter(|_| !e.verdict.passed()) {
        write!(out, "{}", super::wire::text(wire, lang))?;
    }
    if with_hint && let Some(hint) = super::hint(lesson.exercise(&e.id), e) {
        write_hint(out, hint, lang)?;
    }
    Ok(())
}

pub fn write_hint(out: &mut impl Write, hint: &str, lang: &str) -> std::io::Result<()> {
    writeln!(out, "{CYAN}{}{CYAN:#}", t!("human.hint", locale = lang))?;
    for line in hint.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// A failing plain cell: where it is, why, and its details.
pub fn plain_details(
    out: &mut impl Write,
    lesson: &Lesson,
    r: &CellResult,
    lang: &str,
) -> std::io::Result<()> {
    let place = lesson.source.at(lesson.cell(r.cell).line());
    let title = t!("human.cell_at", locale = lang, place = place);
    let word = super::verdict_word(r.verdict.as_str(), lang);
    writeln!(out, "{RED}──── {title}: {word}{RED:#}")?;
    write_cell(out, r, cell_message(lesson, r, lang), lesson, lang)
}

fn timing(d: Duration, cached: bool, lang: &str) -> String {
    if cached {
        t!("human.cached", locale = lang).into_owned()
    } else {
        secs(d)
    }
}

fn verdict_suffix(v: Verdict, lang: &str) -> String {
    if v.passed() {
        String::new()
    } else {
        format!("  {RED}{}{RED:#}", super::verdict_word(v.as_str(), lang))
    }
}

/// A failing cell of an exercise: its own line, then its details.
fn write_details(
    out: &mut impl Write,
    c: &CellResult,
    lesson: &Lesson,
    lang: &str,
) -> std::io::Result<()> {
    if c.verdict.passed() || c.verdict == Verdict::Skipped {
        return Ok(());
    }
    let name = super::who(lesson, c, lang);
    let hidden = if lesson.cell(c.cell).is_hidden() {
        t!("human.hidden", locale = lang).into_owned()
    } else {
        String::new()
    };
    let word = super::verdict_word(c.verdict.as_str(), lang);
    writeln!(out, "{BOLD}{name}{hidden}: {word}{BOLD:#}")?;
    write_cell(out, c, None, lesson, lang)
}

fn write_cell(
    out: &mut impl Write,
    c: &CellResult,
    message: Option<String>,
    lesson: &Lesson,
    lang: &str,
) -> std::io::Result<()> {
    if let Some(m) = message {
        writeln!(out, "{m}")?;
    }
    for d in &c.diagnostics {
        write!(out, "{}", render_diagnostic(d, lesson))?;
    }
    if let Some(diff) = &c.diff {
        write_diff(out, diff, lang)?;
    }
    if let Some(stderr) = c.stderr.as_deref().filter(|_| !c.verdict.passed()) {
        writeln!(out, "{DIM}stderr:{DIM:#}")?;
        for line in stderr.lines().take(20) {
            writeln!(out, "{DIM}  {line}{DIM:#}")?;
        }
    }
    Ok(())
}

/// A unified diff, coloured. Only the two header lines are headers: an
/// expected line that starts with `--` is a removed line like any other.
fn write_diff(out: &mut impl Write, diff: &str, lang: &str) -> std::io::Result<()> {
    let mut header = 0;
    for line in diff.lines() {
        let style = if header < 2 && (line.starts_with("--- ") || line.starts_with("+++ ")) {
            header += 1;
            // The diff is kept with English headers (the JSON report's);
            // a person reads them in their language.
            let side = if header == 1 {
                "human.expected"
            } else {
                "human.actual"
            };
            let words = t!(side, locale = lang);
            writeln!(out, "{BOLD}{} {words}{BOLD:#}", &line[..3])?;
            continue;
        } else if line.starts_with('-') {
            header = 2;
            AnsiColor::Red.on_default()
        } else if line.starts_with('+') {
            header = 2;
            AnsiColor::Green.on_default()
        } else if line.starts_with("@@") {
            header = 2;
            CYAN
        } else {
            Style::new()
        };
        writeln!(out, "{style}{line}{style:#}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_two_lines_of_a_diff_are_headers() {
        let mut out = Vec::new();
        let diff = "--- expected\n+++ actual\n@@ -1 +1 @@\n--- not a header\n+++ nor this\n";
        write_diff(&mut out, diff, "en").unwrap();
        let text = String::from_utf8(out).unwrap();
        let bold = format!("{BOLD}");
        let red = format!("{}", AnsiColor::Red.on_default());
        let green = format!("{}", AnsiColor::Green.on_default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(&bold) && lines[1].starts_with(&bold));
        assert!(lines[3].starts_with(&red), "{:?}", lines[3]);
        assert!(lines[4].starts_with(&green), "{:?}", lines[4]);
    }
}
