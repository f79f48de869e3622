//! The report for people: a line per exercise as it finishes, then each
//! failure in full (diff or compiler message), then a summary. Colour goes
//! through `anstream`, which drops it when stdout is not a terminal or
//! `NO_COLOR` is set.

use std::io::Write;
use std::time::Duration;

use anstyle::{AnsiColor, Style};

use crate::exec::Event;
use crate::lesson::Lesson;
use crate::outcome::{Failure, LessonResult, Summary, Verdict};

const GREEN: Style = AnsiColor::Green.on_default().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();
const CYAN: Style = AnsiColor::Cyan.on_default();

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn badge(v: Verdict) -> String {
    if v.passed() {
        format!("{GREEN}PASS{GREEN:#}")
    } else {
        format!("{RED}FAIL{RED:#}")
    }
}

pub struct Human<W: Write> {
    out: W,
}

impl Human<anstream::AutoStream<std::io::Stdout>> {
    pub fn stdout() -> Self {
        Human {
            out: anstream::stdout(),
        }
    }
}

impl<W: Write> Human<W> {
    pub fn new(out: W) -> Self {
        Human { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Progress lines, printed as the run goes.
    pub fn event(&mut self, event: Event<'_>) {
        let out = &mut self.out;
        let _ = match event {
            Event::LessonStarted(lesson) => {
                writeln!(out, "{BOLD}{}{BOLD:#}", lesson.path.display())
            }
            Event::CellFinished(_, cell) if cell.checked || !cell.verdict.passed() => writeln!(
                out,
                "  {} cell at line {:<17} {DIM}{}{DIM:#}{}",
                badge(cell.verdict),
                cell.line,
                timing(cell.duration, cell.cached),
                verdict_suffix(cell.verdict),
            ),
            Event::CellFinished(..) => Ok(()),
            Event::ExerciseFinished(_, ex) => writeln!(
                out,
                "  {} {:<30} {DIM}{}{DIM:#}{}",
                badge(ex.verdict),
                ex.id,
                timing(ex.duration, ex.cached),
                verdict_suffix(ex.verdict),
            ),
        };
        let _ = out.flush();
    }

    /// Every failure in full, then the summary line.
    pub fn finish(&mut self, results: &[LessonResult], lessons: &[Lesson], elapsed: Duration) {
        let out = &mut self.out;
        for result in results {
            let lesson = lessons.iter().find(|l| l.path == result.path);
            let path = result.path.display();
            let cells = result.cells.iter().filter_map(|c| {
                Some((
                    format!("cell at {path}:{}", c.line),
                    c.verdict,
                    c.failure.as_ref()?,
                ))
            });
            let exercises = result.exercises.iter().filter_map(|e| {
                Some((
                    format!("{} at {path}:{}", e.id, e.line),
                    e.verdict,
                    e.failure.as_ref()?,
                ))
            });
            for (title, verdict, failure) in cells.chain(exercises) {
                let _ = writeln!(out);
                let _ = writeln!(out, "{RED}──── {title}: {}{RED:#}", verdict.as_str());
                let _ = write_failure(out, failure, lesson);
            }
        }
        let s = Summary::of(results);
        let cells: Vec<_> = results.iter().flat_map(|r| &r.cells).collect();
        let cells_failed = cells.iter().filter(|c| !c.verdict.passed()).count();
        let checked = cells.iter().filter(|c| c.checked).count();
        let _ = writeln!(out);
        let style = if crate::outcome::all_passed(results) {
            GREEN
        } else {
            RED
        };
        let _ = write!(
            out,
            "{style}{} exercises: {} passed, {} failed{style:#}; score {}/{}",
            s.exercises, s.passed, s.failed, s.score, s.max_score
        );
        let _ = write!(out, "; {checked} cells checked");
        let cached = results
            .iter()
            .flat_map(|r| r.exercises.iter().map(|e| e.cached))
            .filter(|&c| c)
            .count();
        if cached > 0 {
            let _ = write!(out, "; {cached} exercises from the cache");
        }
        if cells_failed > 0 {
            let _ = write!(out, ", {RED}{cells_failed} cells failed{RED:#}");
        }
        let _ = writeln!(out, " {DIM}({}){DIM:#}", secs(elapsed));
        let _ = out.flush();
    }
}

fn timing(d: Duration, cached: bool) -> String {
    if cached { "cached".to_owned() } else { secs(d) }
}

fn verdict_suffix(v: Verdict) -> String {
    if v.passed() {
        String::new()
    } else {
        format!("  {RED}{}{RED:#}", v.as_str())
    }
}

fn write_failure(
    out: &mut impl Write,
    f: &Failure,
    lesson: Option<&Lesson>,
) -> std::io::Result<()> {
    writeln!(out, "{}", f.message)?;
    for d in &f.diagnostics {
        match lesson {
            Some(lesson) => write!(out, "{}", super::render_diagnostic(d, lesson))?,
            None => writeln!(out, "{}", d.message)?,
        }
    }
    if let Some(diff) = &f.diff {
        for line in diff.lines() {
            let style = if line.starts_with("---") || line.starts_with("+++") {
                BOLD
            } else if line.starts_with('-') {
                AnsiColor::Red.on_default()
            } else if line.starts_with('+') {
                AnsiColor::Green.on_default()
            } else if line.starts_with("@@") {
                CYAN
            } else {
                Style::new()
            };
            writeln!(out, "{style}{line}{style:#}")?;
        }
    }
    if let Some(stderr) = &f.stderr {
        writeln!(out, "{DIM}stderr:{DIM:#}")?;
        for line in stderr.lines().take(20) {
            writeln!(out, "{DIM}  {line}{DIM:#}")?;
        }
    }
    Ok(())
}
