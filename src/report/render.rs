//! A lesson as executed, the way papermill and nbconvert write a notebook
//! that ran: the prose, each cell followed by what it actually printed, a
//! verdict badge per cell and exercise, and under a failure its message,
//! diff and compiler errors. Hidden clients are left out, output and all.
//!
//! Pure: a lesson and its result in, one document out. The HTML page is
//! self-contained (styles inline, no scripts), for a phone and for print.

use std::collections::HashMap;
use std::fmt::Write as _;

use rust_i18n::t;

use super::{cell_message, exercise_message, render_diagnostic};
use crate::lesson::{BlockKind, Cell, CellKind, Lesson};
use crate::outcome::{CellResult, ExerciseResult, LessonResult, Summary, Verdict};

/// What a cell of the lesson became in the run.
struct Ran<'a> {
    cells: HashMap<usize, &'a CellResult>,
    /// Exercises by their server cell.
    exercises: HashMap<usize, &'a ExerciseResult>,
}

impl<'a> Ran<'a> {
    fn of(lesson: &Lesson, result: &'a LessonResult) -> Ran<'a> {
        let mut cells = HashMap::new();
        let mut exercises = HashMap::new();
        for p in &result.cells {
            cells.insert(p.result.cell, &p.result);
        }
        for e in &result.exercises {
            if let Some(ex) = lesson.exercise(&e.id) {
                exercises.insert(ex.server, e);
            }
            for c in &e.cells {
                cells.insert(c.cell, c);
            }
        }
        Ran { cells, exercises }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn verdict_word(v: Verdict, lang: &str) -> String {
    if v.passed() {
        t!("human.pass", locale = lang).into_owned()
    } else {
        super::verdict_word(v.as_str(), lang)
    }
}

/// What a cell is, for its heading.
fn title(lesson: &Lesson, cell: &Cell, lang: &str) -> String {
    let lang_tag = match cell.lang {
        crate::lesson::Lang::Python => " (Python)",
        crate::lesson::Lang::Rust => "",
    };
    let source = &cell.origin.source;
    let place = match source.notebook {
        Some(_) => source.place(cell.line()),
        None => t!("render.at_line", locale = lang, line = cell.line()).into_owned(),
    };
    let what = match &cell.kind {
        CellKind::Server { exercise } => {
            t!("render.server", locale = lang, id = exercise).into_owned()
        }
        CellKind::Client { exercise, .. } => {
            let n = lesson
                .exercise(exercise)
                .and_then(|e| {
                    e.clients
                        .iter()
                        .position(|&i| std::ptr::eq(lesson.cell(i), cell))
                })
                .map_or(0, |p| p + 1);
            t!("render.client", locale = lang, id = exercise, n = n).into_owned()
        }
        CellKind::Plain => t!("render.cell", locale = lang).into_owned(),
        CellKind::Ignored => t!("render.ignored", locale = lang).into_owned(),
    };
    format!("{what}{lang_tag} · {place}")
}

/// Why a cell failed, as plain text: its message, diff, compiler errors and
/// stderr.
fn failure(lesson: &Lesson, r: &CellResult, lang: &str) -> Option<String> {
    if r.verdict.passed() || r.verdict == Verdict::Skipped && r.cause.is_none() {
        return None;
    }
    let mut text = String::new();
    if let Some(m) = cell_message(lesson, r, lang) {
        let _ = writeln!(text, "{m}");
    }
    if let Some(diff) = &r.diff {
        let _ = writeln!(text, "{diff}");
    }
    for d in &r.diagnostics {
        let _ = writeln!(text, "{}", render_diagnostic(d, lesson));
    }
    if let Some(stderr) = &r.stderr {
        let _ = writeln!(text, "stderr:\n{stderr}");
    }
    (!text.trim().is_empty()).then_some(text)
}

/// A piece of the rendered lesson.
enum Shown<'a> {
    Prose(&'a str),
    Cell {
        cell: &'a Cell,
        /// The cell as the lesson writes it, fences included.
        text: &'a str,
        /// The exercise this cell is the server of.
        exercise: Option<&'a ExerciseResult>,
        result: Option<&'a CellResult>,
    },
    Output {
        cell: &'a Cell,
        text: &'a str,
    },
}

/// The lesson's blocks with what ran, hidden clients and their outputs
/// left out.
fn walk<'a>(lesson: &'a Lesson, result: &'a LessonResult) -> Vec<Shown<'a>> {
    let ran = Ran::of(lesson, result);
    let text = &lesson.source.text;
    let mut shown = Vec::new();
    for block in &lesson.blocks {
        let part = &text[block.range.clone()];
        match block.kind {
            BlockKind::Prose | BlockKind::Hint(_) => shown.push(Shown::Prose(part)),
            BlockKind::Cell(i) if !lesson.cell(i).is_hidden() => shown.push(Shown::Cell {
                cell: lesson.cell(i),
                text: part,
                exercise: ran.exercises.get(&i).copied(),
                result: ran.cells.get(&i).copied(),
            }),
            BlockKind::Output(i) if !lesson.cell(i).is_hidden() => shown.push(Shown::Output {
                cell: lesson.cell(i),
                text: part,
            }),
            _ => {}
        }
    }
    shown
}

pub fn html(lesson: &Lesson, result: &LessonResult, lang: &str) -> String {
    let mut body = String::new();
    let summary = Summary::of(std::slice::from_ref(result));
    let _ = writeln!(
        body,
        "<header><p class=\"path\">{}</p><p class=\"summary\">{}</p></header>",
        escape(&lesson.path.display().to_string()),
        escape(&summary_line(&summary, lang)),
    );
    for piece in walk(lesson, result) {
        match piece {
            Shown::Prose(part) => {
                let parser = pulldown_cmark::Parser::new(part);
                pulldown_cmark::html::push_html(&mut body, parser);
            }
            Shown::Cell {
                cell,
                exercise,
                result: r,
                ..
            } => {
                if let Some(e) = exercise {
                    let _ = writeln!(
                        body,
                        "<div class=\"exercise {cls}\"><span class=\"badge\">{}</span> {} <b>{}</b> · {}/{} {}</div>",
                        escape(&verdict_word(e.verdict, lang)),
                        escape(&t!("render.exercise", locale = lang)),
                        escape(&e.id),
                        e.score(),
                        e.points,
                        escape(&t!("render.points", locale = lang)),
                        cls = if e.verdict.passed() { "pass" } else { "fail" },
                    );
                    if let Some(m) = exercise_message(lesson, e, lang) {
                        let _ = writeln!(body, "<p class=\"why\">{}</p>", escape(&m));
                    }
                }
                let badge = match r {
                    Some(r) => format!(
                        "<span class=\"badge {}\">{}</span>",
                        if r.verdict.passed() { "pass" } else { "fail" },
                        escape(&verdict_word(r.verdict, lang))
                    ),
                    None => format!(
                        "<span class=\"badge\">{}</span>",
                        escape(&t!("render.not_run", locale = lang))
                    ),
                };
                let _ = writeln!(
                    body,
                    "<section class=\"cell\"><div class=\"head\">{badge} {}</div><pre class=\"code\"><code>{}</code></pre>",
                    escape(&title(lesson, cell, lang)),
                    escape(cell.code.trim_end_matches('\n')),
                );
                match r.and_then(|r| r.actual.as_deref()) {
                    Some("") => {
                        let _ = writeln!(
                            body,
                            "<div class=\"label\">{}</div>",
                            escape(&t!("render.printed_nothing", locale = lang)),
                        );
                    }
                    Some(actual) => {
                        let _ = writeln!(
                            body,
                            "<div class=\"label\">{}</div><pre class=\"out\">{}</pre>",
                            escape(&t!("render.printed", locale = lang)),
                            escape(actual),
                        );
                    }
                    None => {}
                }
                if let Some(f) = r.and_then(|r| failure(lesson, r, lang)) {
                    let _ = writeln!(body, "<pre class=\"failure\">{}</pre>", diff_lines(&f));
                }
                let _ = writeln!(body, "</section>");
            }
            Shown::Output { cell, .. } => {
                if let Some(expected) = &cell.expected {
                    let _ = writeln!(
                        body,
                        "<details class=\"expected\"><summary>{}</summary><pre>{}</pre></details>",
                        escape(&t!("render.expected", locale = lang)),
                        escape(&expected.text),
                    );
                }
            }
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        if lang == "pt" { "pt-BR" } else { "en" },
        escape(&lesson.path.display().to_string()),
    )
}

fn summary_line(s: &Summary, lang: &str) -> String {
    format!(
        "{}; {}",
        t!(
            "human.summary",
            locale = lang,
            n = s.exercises,
            passed = s.passed,
            failed = s.failed
        ),
        t!(
            "render.score",
            locale = lang,
            score = s.score,
            max = s.max_score
        )
    )
}

/// The same, as Markdown: the lesson's own prose and cells, each cell
/// followed by a verdict line and a `text` block of what it printed.
pub fn markdown(lesson: &Lesson, result: &LessonResult, lang: &str) -> String {
    let summary = Summary::of(std::slice::from_ref(result));
    let mut out = format!("> **{}**\n\n", summary_line(&summary, lang));
    let fence = |body: &str| "`".repeat(longest_ticks(body).max(2) + 1);
    // What a cell did goes after its `output` block, so cell and expected
    // output stay together as in the lesson.
    let mut pending = String::new();
    for piece in walk(lesson, result) {
        let between = match piece {
            Shown::Output { .. } => true,
            Shown::Prose(p) => p.trim().is_empty(),
            Shown::Cell { .. } => false,
        };
        if !between && !pending.is_empty() {
            out.push('\n');
            out.push_str(&std::mem::take(&mut pending));
        }
        match piece {
            Shown::Prose(part) | Shown::Output { text: part, .. } => out.push_str(part),
            Shown::Cell {
                cell,
                text,
                exercise,
                result: r,
            } => {
                if let Some(e) = exercise {
                    let _ = writeln!(
                        out,
                        "> **{} `{}`: {}** ({}/{} {})\n",
                        t!("render.exercise", locale = lang),
                        e.id,
                        verdict_word(e.verdict, lang),
                        e.score(),
                        e.points,
                        t!("render.points", locale = lang),
                    );
                }
                out.push_str(text);
                if !text.ends_with('\n') {
                    out.push('\n');
                }
                let Some(r) = r else { continue };
                let _ = writeln!(
                    pending,
                    "> {}: **{}**\n",
                    title(lesson, cell, lang),
                    verdict_word(r.verdict, lang)
                );
                match r.actual.as_deref() {
                    Some("") => {
                        let _ =
                            writeln!(pending, "{}\n", t!("render.printed_nothing", locale = lang));
                    }
                    Some(actual) => {
                        let f = fence(actual);
                        let newline = if actual.ends_with('\n') { "" } else { "\n" };
                        let _ = writeln!(
                            pending,
                            "{}:\n\n{f}text\n{actual}{newline}{f}\n",
                            t!("render.printed", locale = lang),
                        );
                    }
                    None => {}
                }
                if let Some(fail) = failure(lesson, r, lang) {
                    let f = fence(&fail);
                    let _ = writeln!(pending, "{f}text\n{fail}{f}\n");
                }
            }
        }
    }
    if !pending.is_empty() {
        out.push('\n');
        out.push_str(&pending);
    }
    out
}

/// Escaped text whose diff lines are marked, so additions and removals
/// stand out (and stay readable without colour: the `+` and `-` remain).
fn diff_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let class = match line.as_bytes().first() {
                Some(b'+') if !line.starts_with("+++") => "add",
                Some(b'-') if !line.starts_with("---") => "del",
                _ => return escape(line),
            };
            format!("<span class=\"{class}\">{}</span>", escape(line))
        })
        .collect()
}

/// The longest run of backticks in `text`, so a fence around it is longer.
fn longest_ticks(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

const STYLE: &str = "
:root { --fg: #1d1f21; --muted: #5f6368; --pass: #1a7f37; --fail: #c62828; --code: #f6f8fa; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); font: 16px/1.55 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 1rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
header .path { color: var(--muted); margin: 0; font-family: ui-monospace, monospace; font-size: .85rem; }
header .summary { font-weight: 600; margin: .25rem 0 .75rem; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .75rem; overflow-x: auto; font: .85rem/1.45 ui-monospace, 'SFMono-Regular', Menlo, monospace; white-space: pre; }
code { font-family: ui-monospace, monospace; font-size: .9em; }
.cell { margin: 1rem 0; }
.cell .head { font-size: .85rem; color: var(--muted); margin-bottom: .25rem; }
.cell pre.code { margin: 0; }
.label { font-size: .8rem; color: var(--muted); margin: .35rem 0 .15rem; }
pre.out { background: #fff; margin: 0; }
pre.failure { background: #fff5f5; border-color: #f0b4b4; color: #5c1010; white-space: pre-wrap; }
pre.failure .add { color: #116329; background: #dafbe1; }
pre.failure .del { color: #82071e; background: #ffebe9; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .75rem; font-weight: 700; color: #fff; background: var(--muted); }
.badge.pass, .exercise.pass .badge { background: var(--pass); }
.badge.fail, .exercise.fail .badge { background: var(--fail); }
.exercise { margin: 1.5rem 0 .25rem; padding: .4rem .6rem; border-left: 4px solid var(--muted); background: var(--code); }
.exercise.pass { border-color: var(--pass); }
.exercise.fail { border-color: var(--fail); }
.why { color: var(--fail); margin: .25rem 0; }
details.expected { margin: .25rem 0 1rem; font-size: .85rem; color: var(--muted); }
@media print {
  main { max-width: none; }
  pre { white-space: pre-wrap; overflow: visible; break-inside: avoid; }
  details.expected > pre { display: block; }
  .badge { color: #000; border: 1px solid #000; background: none !important; }
}
";
/// Writes the executed lesson to `out`: Markdown for a `.md` file, one
/// HTML page otherwise.
pub fn write(
    out: &std::path::Path,
    lesson: &Lesson,
    result: &LessonResult,
    lang: &str,
) -> std::io::Result<()> {
    let page = match out.extension().and_then(|e| e.to_str()) {
        Some("md") => markdown(lesson, result, lang),
        _ => html(lesson, result, lang),
    };
    crate::fs::write_atomically(out, &page)
}
