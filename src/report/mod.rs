//! Reports: what a run found, for people (`human`) and for scripts (`json`).
//! Every reporter hears the same events; several can listen at once.
//! Causes become words here, and cells and lines become places in files.

pub mod ci;
pub mod human;
pub mod json;
pub mod pcap;
pub mod render;
pub mod wire;

use std::borrow::Cow;
use std::fmt::Write as _;

use rust_i18n::t;

use crate::lesson::{Cell, Exercise, Lesson};
use crate::observation::Diagnostic;
use crate::outcome::Finished;
use crate::outcome::{Cause, CellResult, ExerciseResult, PlainResult, Role};

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

impl Reporters {
    /// A run's reporters: the human one on stdout unless `print_json`, and
    /// the JSON report, which once finished goes to stdout (`print_json`),
    /// the JUnit file and GitHub ([`ci::finish`]).
    pub fn for_run(
        print_json: bool,
        junit: Option<std::path::PathBuf>,
        info: json::RunInfo,
    ) -> Reporters {
        let mut reporters = Reporters::default();
        if !print_json {
            reporters.0.push(Box::new(human::Human::stdout()));
        }
        reporters.0.push(Box::new(json::Json::new(
            Some(info),
            move |value: &serde_json::Value| ci::finish(value, print_json, junit.as_deref()),
        )));
        reporters
    }
}

impl Reporter for Reporters {
    fn event(&mut self, event: &Event<'_>) {
        for r in &mut self.0 {
            r.event(event);
        }
    }
}

/// A verdict as a person reads it: the identifier in English (what the
/// JSON report and `grades.json` say, and scripts grep for), words in
/// Portuguese. `word`: a verdict identifier, or a grading status such as
/// `missing`; one without words is shown as it is.
pub fn verdict_word(word: &str, lang: &str) -> String {
    words("verdict", word, lang)
}

/// An identifier of `kind` (`verdict`, `check`) in `lang`'s words, where
/// the locales have them; else as it is.
pub fn words(kind: &str, word: &str, lang: &str) -> String {
    let key = format!("{kind}.{word}");
    let said = t!(&key, locale = lang);
    match said == key {
        true => word.to_owned(),
        false => said.into_owned(),
    }
}

/// A cell of an exercise, as a reader names it: `the server (line 58)`,
/// `client 2 (line 84)`; `client 1 (ana.md:41)` when the cell comes from
/// another file than the lesson (a graded submission) or the lesson is a
/// grading check, and only `hidden test 1` for a hidden client when the
/// lesson conceals them.
pub fn who(lesson: &Lesson, cell: &CellResult, lang: &str) -> String {
    let c = lesson.cell(cell.cell);
    // (1.2) A client under faults on the wire is named with them:
    // `hidden test 2 (bytes split into pieces of 1)`.
    let faults: Vec<String> = c.wire().iter().map(|f| f.describe(lang)).collect();
    let name = name_cell(lesson, cell, lang);
    let faults = faults.join(", ");
    match name.strip_suffix(')') {
        _ if faults.is_empty() => name,
        // `client 1 (line 24, bytes split into pieces of 1)`
        Some(open) => format!("{open}, {faults})"),
        None => format!("{name} ({faults})"),
    }
}

fn name_cell(lesson: &Lesson, cell: &CellResult, lang: &str) -> String {
    let c = lesson.cell(cell.cell);
    let line = c.line();
    let concealed = lesson.conceal_hidden.then(|| {
        let ex = c.exercise().and_then(|id| lesson.exercise(id))?;
        let rank = |hidden: bool| {
            ex.clients
                .iter()
                .filter(|&&i| lesson.cell(i).is_hidden() == hidden)
                .position(|&i| i == cell.cell)
                .map(|p| p + 1)
        };
        Some((c.is_hidden(), rank(c.is_hidden())?))
    });
    if let Some(Some((true, n))) = concealed {
        return t!("who.hidden", locale = lang, n = n).into_owned();
    }
    let n = match (concealed, cell.role) {
        (Some(Some((false, n))), _) => n,
        (_, Some(Role::Client(k))) => k + 1,
        _ => 0,
    };
    // In grading, a check mixes the student's cells and the reference's:
    // each is named with its file.
    let other_file = c.origin.path() != lesson.path || lesson.conceal_hidden;
    // In a notebook, a cell is named by its place among the notebook's cells.
    if other_file || c.origin.source.notebook.is_some() {
        let file = c
            .origin
            .path()
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let place = if other_file {
            format!("{file}:{}", c.origin.source.place(line))
        } else {
            c.origin.source.place(line)
        };
        return match cell.role {
            Some(Role::Server) => t!("who.server_in", locale = lang, place = place),
            Some(Role::Client(_)) => t!("who.client_in", locale = lang, n = n, place = place),
            None => t!("who.cell_in", locale = lang, place = place),
        }
        .into_owned();
    }
    match cell.role {
        Some(Role::Server) => t!("who.server", locale = lang, line = line),
        Some(Role::Client(_)) => t!("who.client", locale = lang, n = n, line = line),
        None => t!("who.cell", locale = lang, line = line),
    }
    .into_owned()
}

/// "of" before a name: in Portuguese, `de` joined to the name's article
/// (`do servidor`, `da célula`), as a reader writes it.
fn of(who: &str, lang: &str) -> String {
    if !lang.starts_with(crate::i18n::PORTUGUESE) {
        return format!("of {who}");
    }
    match who.split_once(' ') {
        Some(("o", rest)) => format!("do {rest}"),
        Some(("a", rest)) => format!("da {rest}"),
        _ => format!("de {who}"),
    }
}

fn and_list(items: &[String], lang: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}{}{last}", init.join(", "), t!("list.and", locale = lang)),
    }
}

fn secs(d: std::time::Duration) -> String {
    d.as_secs_f64().to_string()
}

/// Where a panic happened: ` at line N` in the lesson, when it is the cell's.
fn place(cell: &Cell, line: Option<usize>, lang: &str) -> String {
    let source = &cell.origin.source;
    line.map(|l| match source.notebook {
        Some(_) => t!(
            "place.at",
            locale = lang,
            place = source.place(cell.line() + l)
        )
        .into_owned(),
        None => t!("place.at_line", locale = lang, line = cell.line() + l).into_owned(),
    })
    .unwrap_or_default()
}

/// Who a cause is about and where, as `cell_message`'s two halves need it.
struct Subject<'a> {
    who: String,
    /// A plain cell: its messages name no role and some say less.
    plain: bool,
    cell: &'a Cell,
    lang: &'a str,
}

/// One line saying why an exercise's cell, or a plain cell, did not pass,
/// in `lang` (`en` or `pt`).
pub fn cell_message(lesson: &Lesson, r: &CellResult, lang: &str) -> Option<String> {
    let cause = r.cause.as_ref()?;
    let plain = r.role.is_none();
    let who = if plain {
        t!("who.the_cell", locale = lang).into_owned()
    } else {
        who(lesson, r, lang)
    };
    let subject = Subject {
        who,
        plain,
        cell: lesson.cell(r.cell),
        lang,
    };
    let text = code_message(cause, &subject).unwrap_or_else(|| bounds_message(cause, &subject));
    Some(text.into_owned())
}

/// The causes in the cell's own code: it did not compile, was refused, or
/// panicked, failed or died while running. `None` for the rest (limits,
/// stops and differences), which `bounds_message` says.
fn code_message(cause: &Cause, s: &Subject<'_>) -> Option<Cow<'static, str>> {
    let (who, plain, l) = (&s.who, s.plain, s.lang);
    let text = match cause {
        Cause::DoesNotCompile => t!("cause.does_not_compile", locale = l, who = who),
        Cause::Refused { construct } => {
            t!(
                "cause.refused",
                locale = l,
                who = who,
                construct = construct
            )
        }
        Cause::RunnerFailed { message } if plain => message.clone().into(),
        Cause::RunnerFailed { message } => {
            t!(
                "cause.runner_failed",
                locale = l,
                who = who,
                message = message
            )
        }
        Cause::Panicked { message, .. } if plain => {
            t!("cause.panicked_cell", locale = l, message = message)
        }
        Cause::Panicked {
            thread,
            line,
            message,
        } => {
            let at = place(s.cell, *line, l);
            if thread == "main" || thread == "<unnamed>" {
                t!(
                    "cause.panicked",
                    locale = l,
                    who = who,
                    at = at,
                    message = message
                )
            } else {
                t!(
                    "cause.panicked_thread",
                    locale = l,
                    who = who,
                    thread = thread,
                    at = at,
                    message = message
                )
            }
        }
        Cause::ReturnedError { message } => {
            t!(
                "cause.returned_error",
                locale = l,
                who = who,
                message = message
            )
        }
        Cause::ReplayPanicked { message } => {
            t!(
                "cause.replay_panicked",
                locale = l,
                of_who = of(who, l),
                message = message
            )
        }
        Cause::Died { status } if plain => t!("cause.died_cell", locale = l, status = status),
        Cause::Died { status } => t!("cause.died", locale = l, who = who, status = status),
        _ => return None,
    };
    Some(text)
}

/// The causes of a cell stopped from outside or judged by what it did: a
/// limit reached (output, time, binding), a stop before its end, an output
/// that differs.
fn bounds_message(cause: &Cause, s: &Subject<'_>) -> Cow<'static, str> {
    let (who, plain, l) = (&s.who, s.plain, s.lang);
    match cause {
        Cause::OutputLimit { cap, .. } if plain => {
            t!("cause.output_limit_cell", locale = l, cap = cap)
        }
        Cause::OutputLimit { bytes, cap } => {
            t!(
                "cause.output_limit",
                locale = l,
                who = who,
                cap = cap,
                bytes = bytes
            )
        }
        Cause::NotBound { port, limit } => {
            t!(
                "cause.not_bound",
                locale = l,
                port = port,
                secs = secs(*limit)
            )
        }
        Cause::CompileTooLong { limit } => {
            t!("cause.compile_too_long", locale = l, secs = secs(*limit))
        }
        Cause::EndedWithoutBinding { port } => {
            t!("cause.ended_without_binding", locale = l, port = port)
        }
        Cause::StillRunning { limit, .. } if plain => {
            t!("cause.still_running_cell", locale = l, secs = secs(*limit))
        }
        Cause::StillRunning { limit, .. } => {
            t!(
                "cause.still_running_one",
                locale = l,
                who = who,
                secs = secs(*limit)
            )
        }
        Cause::StoppedEarly => t!("cause.did_not_run", locale = l, who = who),
        Cause::CellStopped {
            stderr,
            question_mark: true,
        } => t!("cause.stopped_at_question", locale = l, stderr = stderr),
        Cause::CellStopped { stderr, .. } => {
            t!("cause.stopped_before_end", locale = l, stderr = stderr)
        }
        Cause::Differs { .. } if plain => t!("cause.differs_cell", locale = l),
        Cause::Differs {
            server_kept_running,
            ..
        } => {
            let mut m = t!("cause.differs_one", locale = l, who = who).into_owned();
            if *server_kept_running {
                m.push_str(&t!("cause.kept_running", locale = l));
            }
            m.into()
        }
        // Listed rather than `_`, so a new cause must be given words.
        Cause::DoesNotCompile
        | Cause::Refused { .. }
        | Cause::RunnerFailed { .. }
        | Cause::Panicked { .. }
        | Cause::ReturnedError { .. }
        | Cause::ReplayPanicked { .. }
        | Cause::Died { .. } => unreachable!("said by code_message"),
    }
}

/// One line saying why an exercise did not pass, in `lang`.
pub fn exercise_message(lesson: &Lesson, r: &ExerciseResult, lang: &str) -> Option<String> {
    let names = |cells: &[usize]| -> Vec<String> {
        cells
            .iter()
            .filter_map(|&i| r.cells.get(i))
            .map(|c| who(lesson, c, lang))
            .collect()
    };
    let l = lang;
    match r.cause.as_ref()? {
        Cause::StillRunning { cells, limit } => {
            let still = names(cells);
            let secs = secs(*limit);
            Some(
                match still.len() {
                    0 => t!("cause.still_running_exercise", locale = l, secs = secs),
                    1 => t!(
                        "cause.still_running_one",
                        locale = l,
                        who = still[0],
                        secs = secs
                    ),
                    _ => t!(
                        "cause.still_running_many",
                        locale = l,
                        who = and_list(&still, l),
                        secs = secs
                    ),
                }
                .into_owned(),
            )
        }
        Cause::StoppedEarly => Some(t!("cause.stopped_early", locale = l).into_owned()),
        Cause::Differs {
            cells,
            server_kept_running,
        } => {
            let mut m = t!(
                "cause.differs",
                locale = l,
                of_who = of(&and_list(&names(cells), l), l)
            )
            .into_owned();
            if *server_kept_running && cells.contains(&0) {
                m.push_str(&t!("cause.kept_running", locale = l));
            }
            Some(m)
        }
        _ => {
            let cell = r.cells.get(r.decided_by?)?;
            cell_message(lesson, cell, lang)
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
        let column = at.column;
        // The line as the reader counts it: in a notebook, within its cell.
        let line = match &origin.source.notebook {
            Some(map) => map.place(origin.line).line.unwrap_or(origin.line),
            None => origin.line,
        };
        let gutter = " ".repeat(line.to_string().len());
        writeln!(out, "{gutter}--> {origin}:{column}").ok();
        if let Some(text) = origin.source.line(origin.line) {
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
    use crate::observation::At;
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
