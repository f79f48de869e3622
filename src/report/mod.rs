//! Reports: what a run found, for people (`human`) and for scripts (`json`).
//! Every reporter hears the same events; several can listen at once.
//! Causes become words here, and cells and lines become places in files.

pub mod human;
pub mod json;

use std::fmt::Write as _;

use crate::lesson::{Cell, Exercise, Lesson};
use crate::outcome::{Cause, CellResult, Diagnostic, ExerciseResult, PlainResult, Role};
use crate::run::Finished;

/// What happens during a run, in the order it happens.
pub enum Event<'a> {
    Started {
        lessons: &'a [&'a Lesson],
        /// Exercises the run will report.
        exercises: usize,
    },
    CellFinished(&'a Lesson, &'a PlainResult),
    ExerciseFinished(&'a Lesson, &'a ExerciseResult),
    Finished(&'a Finished, &'a [&'a Lesson]),
}

pub trait Reporter {
    fn event(&mut self, event: &Event<'_>);
}

/// Several reporters at once (`--format json --junit FILE`).
#[derive(Default)]
pub struct Reporters(pub Vec<Box<dyn Reporter>>);

impl Reporter for Reporters {
    fn event(&mut self, event: &Event<'_>) {
        for r in &mut self.0 {
            r.event(event);
        }
    }
}

/// A cell of an exercise, as a reader names it: `the server (line 58)`,
/// `client 2 (line 84)`.
pub fn who(lesson: &Lesson, cell: &CellResult) -> String {
    let line = lesson.cell(cell.cell).line();
    match cell.role {
        Some(Role::Server) => format!("the server (line {line})"),
        Some(Role::Client(k)) => format!("client {} (line {line})", k + 1),
        None => format!("the cell at line {line}"),
    }
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn secs(d: std::time::Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Where a panic happened: ` at line N` in the lesson, when it is the cell's.
fn place(cell: &Cell, line: Option<usize>) -> String {
    line.map(|l| format!(" at line {}", cell.line() + l))
        .unwrap_or_default()
}

/// One line saying why an exercise's cell, or a plain cell, did not pass.
pub fn cell_message(lesson: &Lesson, r: &CellResult) -> Option<String> {
    let cause = r.cause.as_ref()?;
    let plain = r.role.is_none();
    let who = if plain {
        "the cell".to_owned()
    } else {
        who(lesson, r)
    };
    let cell = lesson.cell(r.cell);
    Some(match cause {
        Cause::DoesNotCompile => format!("{who} does not compile"),
        Cause::Refused { construct } => format!(
            "{who} is refused: `{construct}` reads files or the environment while compiling, \
             which students' code may not do"
        ),
        Cause::RunnerFailed { message } if plain => message.clone(),
        Cause::RunnerFailed { message } => format!("{who}: {message}"),
        Cause::OutputLimit { cap, .. } if plain => {
            format!("the cell wrote more than {cap} bytes to stdout and was stopped")
        }
        Cause::OutputLimit { bytes, cap } => format!(
            "{who} wrote more than {cap} bytes to stdout ({bytes} bytes by the time it was \
             stopped); the output cap is {cap} bytes"
        ),
        Cause::Panicked { message, .. } if plain => format!("the cell panicked: {message}"),
        Cause::Panicked {
            thread,
            line,
            message,
        } => {
            let at = place(cell, *line);
            if thread == "main" || thread == "<unnamed>" {
                format!("{who} panicked{at}: {message}")
            } else {
                format!("{who}: thread '{thread}' panicked{at}: {message}")
            }
        }
        Cause::ReturnedError { message } => {
            format!("{who} stopped with an error returned with `?`: {message}")
        }
        Cause::ReplayPanicked { message } => {
            format!("a plain cell above {who} panicked when it ran again before it: {message}")
        }
        Cause::Died { status } if plain => format!("the cell's process died: {status}"),
        Cause::Died { status } => format!("{who} died: {status}"),
        Cause::NotBound { port, limit } => {
            format!(
                "the server did not bind port {port} within {}",
                secs(*limit)
            )
        }
        Cause::NeverStarted { .. } => {
            "the server did not start running within the compile limit".to_owned()
        }
        Cause::EndedWithoutBinding { port } => {
            format!("the server ended without binding port {port}")
        }
        Cause::StillRunning { limit, .. } if plain => {
            format!(
                "the cell ran for more than {} and was stopped",
                secs(*limit)
            )
        }
        Cause::StillRunning { limit, .. } => {
            format!("{who} was still running after {} and stopped", secs(*limit))
        }
        Cause::StoppedEarly => format!("{who} did not run: the exercise had already ended"),
        Cause::CellStopped {
            stderr,
            question_mark: true,
        } => format!("the cell stopped at a `?` with an error: {stderr}"),
        Cause::CellStopped { stderr, .. } => format!("the cell stopped before its end: {stderr}"),
        Cause::Differs { .. } if plain => {
            "the cell's output differs from the expected output".to_owned()
        }
        Cause::Differs {
            server_kept_running,
            ..
        } => {
            let mut m = format!("{who} differs from the expected output");
            if *server_kept_running {
                m.push_str(" (the server did not end by itself and was stopped)");
            }
            m
        }
    })
}

/// One line saying why an exercise did not pass.
pub fn exercise_message(lesson: &Lesson, r: &ExerciseResult) -> Option<String> {
    let names = |cells: &[usize]| -> Vec<String> {
        cells
            .iter()
            .filter_map(|&i| r.cells.get(i))
            .map(|c| who(lesson, c))
            .collect()
    };
    match r.cause.as_ref()? {
        Cause::StillRunning { cells, limit } => {
            let still = names(cells);
            let subject = match still.len() {
                0 => "the exercise was".to_owned(),
                1 => format!("{} was", still[0]),
                _ => format!("{} were", and_list(&still)),
            };
            Some(format!(
                "{subject} still running after {} and stopped",
                secs(*limit)
            ))
        }
        Cause::StoppedEarly => {
            Some("the exercise was stopped before all its clients ran".to_owned())
        }
        Cause::Differs {
            cells,
            server_kept_running,
        } => {
            let mut m = format!(
                "the output of {} differs from the expected output",
                and_list(&names(cells))
            );
            if *server_kept_running && cells.contains(&0) {
                m.push_str(" (the server did not end by itself and was stopped)");
            }
            Some(m)
        }
        _ => {
            let cell = r.cells.get(r.decided_by?)?;
            cell_message(lesson, cell)
        }
    }
}

/// A compiler message the way rustc shows it, but pointing at the lesson:
///
/// ```text
/// error[E0425]: cannot find value `x` in this scope
///   --> lessons/07-sockets.md:64:5
///    |
/// 64 |     println!("{}", x);
///    |                    ^ not found in this scope
/// ```
pub fn render_diagnostic(d: &Diagnostic, lesson: &Lesson) -> String {
    let mut out = String::new();
    match &d.code {
        Some(code) => writeln!(out, "{}[{code}]: {}", d.level, d.message),
        None => writeln!(out, "{}: {}", d.level, d.message),
    }
    .ok();
    if let Some(at) = d.at
        && let Some(cell) = lesson.cells.get(at.cell)
    {
        let origin = cell.origin.down(at.line);
        let (line, column) = (origin.line, at.column);
        let gutter = " ".repeat(line.to_string().len());
        writeln!(
            out,
            "{gutter}--> {}:{line}:{column}",
            origin.path().display()
        )
        .ok();
        if let Some(text) = origin.source.line(line) {
            writeln!(out, "{gutter} |").ok();
            writeln!(out, "{line} | {text}").ok();
            let pad: String = text
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let label = if d.label.is_empty() {
                String::new()
            } else {
                format!(" {}", d.label)
            };
            writeln!(out, "{gutter} | {pad}{}{label}", "^".repeat(d.width.max(1))).ok();
        }
    }
    for help in &d.help {
        writeln!(out, "  = help: {}", help.replace('\n', "\n          ")).ok();
    }
    out
}

/// The file line and column of a compiler message, when it points at a cell.
pub fn diagnostic_place(d: &Diagnostic, lesson: &Lesson) -> Option<(usize, usize)> {
    let at = d.at?;
    let cell = lesson.cells.get(at.cell)?;
    Some((cell.line() + at.line, at.column))
}

/// The hint of an exercise that did not pass.
pub fn hint<'l>(ex: Option<&'l Exercise>, r: &ExerciseResult) -> Option<&'l str> {
    if r.verdict.passed() {
        return None;
    }
    ex?.hint.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::At;
    use std::path::Path;

    #[test]
    fn diagnostics_point_at_the_lesson_line() {
        let src = "# t\n\n```rust\nlet a = 1;\nprintln!(\"{}\", x);\n```\n";
        let lesson = crate::lesson::parse(Path::new("lessons/l.md"), src).unwrap();
        let d = Diagnostic {
            level: "error".into(),
            code: Some("E0425".into()),
            message: "cannot find value `x` in this scope".into(),
            at: Some(At {
                cell: 0,
                line: 2,
                column: 16,
            }),
            width: 1,
            label: "not found in this scope".into(),
            help: vec!["a local variable with a similar name exists: `a`".into()],
        };
        let text = render_diagnostic(&d, &lesson);
        assert_eq!(
            text,
            "error[E0425]: cannot find value `x` in this scope\n \
             --> lessons/l.md:5:16\n  |\n5 | println!(\"{}\", x);\n  |                \
             ^ not found in this scope\n  = help: a local variable with a similar name exists: `a`\n"
        );
        assert_eq!(diagnostic_place(&d, &lesson), Some((5, 16)));
    }
}
