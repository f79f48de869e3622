//! Plain cells: the notebook part of a lesson, run top to bottom in one
//! context so later cells see earlier cells' items and variables.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::capture::Capture;
use super::kernel::{EvalError, Kernel, Killer};
use super::shape;
use super::source::SourceMap;
use super::{Engine, Event};
use super::{runtime, sandbox};
use crate::compare::{Placeholders, compare};
use crate::lesson::{Cell, CellKind, Lesson};
use crate::outcome::{CellResult, Failure, Verdict};

/// What one plain cell did, as the cache stores it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlainEntry {
    pub result: CellResult,
    /// `Some(wrapped)` when the cell ran to its end, so exercise contexts
    /// replay it (see [`Replay`]).
    pub replay: Option<bool>,
}

#[derive(Default)]
pub struct PlainRun {
    /// Each plain cell, by its index in the lesson.
    pub entries: Vec<(usize, PlainEntry)>,
}

impl PlainRun {
    pub fn results(&self) -> Vec<CellResult> {
        self.entries.iter().map(|(_, e)| e.result.clone()).collect()
    }

    /// The plain cells that ran to their end, as they ran: what exercise
    /// contexts replay to see the same items and variables.
    pub fn replayable(&self) -> Vec<Replay> {
        self.entries
            .iter()
            .filter_map(|(index, e)| {
                e.replay.map(|wrapped| Replay {
                    index: *index,
                    wrapped,
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Replay {
    pub index: usize,
    /// Run inside `{ }`: evcxr cannot keep a variable that borrows, and
    /// such a cell still runs as a block (its variables stay its own).
    pub wrapped: bool,
}

/// Appends a plain cell's code the way it ran in the lesson's context.
pub fn push_cell(map: &mut SourceMap, cell: &Cell, wrapped: bool) {
    if wrapped {
        map.push("{", None);
    }
    map.push(&cell.code, Some(cell.line + 1));
    if wrapped {
        map.push("}", None);
    } else if shape::ends_with_expression(&cell.code) {
        map.push(";", None);
    }
}

/// evcxr's refusal to keep a variable between cells: one that holds a
/// borrow ("can't be persisted") or a closure ("cannot be persisted").
fn cannot_persist(evaluated: &Result<(), EvalError>) -> bool {
    let says = |m: &str| m.contains("be persisted");
    match evaluated {
        Err(EvalError::Compile(ds)) => ds.iter().any(|d| says(&d.message)),
        Err(EvalError::Other(m)) => says(m),
        _ => false,
    }
}

const STOPPED_NONE: u8 = 0;
const STOPPED_TIMEOUT: u8 = 1;
const STOPPED_FLOOD: u8 = 2;
const STOPPED_INTERRUPT: u8 = 3;

/// Kills the context when the cell runs too long or prints too much. Stops
/// watching when dropped.
struct Watchdog {
    reason: Arc<AtomicU8>,
    done: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn spawn(
        killer: Killer,
        flooded: impl Fn() -> bool + Send + 'static,
        limit: Duration,
    ) -> Watchdog {
        let reason = Arc::new(AtomicU8::new(STOPPED_NONE));
        let done = Arc::new(AtomicU8::new(0));
        let thread = {
            let (reason, done) = (Arc::clone(&reason), Arc::clone(&done));
            std::thread::spawn(move || {
                let start = Instant::now();
                while done.load(Ordering::SeqCst) == 0 {
                    let why = if sandbox::interrupted() {
                        STOPPED_INTERRUPT
                    } else if start.elapsed() > limit {
                        STOPPED_TIMEOUT
                    } else if flooded() {
                        STOPPED_FLOOD
                    } else {
                        STOPPED_NONE
                    };
                    if why != STOPPED_NONE {
                        reason.store(why, Ordering::SeqCst);
                        killer.kill();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Watchdog {
            reason,
            done,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u8 {
        self.done.store(1, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.reason.load(Ordering::SeqCst)
    }
}

/// Rebuilds what the cell printed from evcxr's lines. The cell's output is
/// followed by `\n<sentinel>\n`, so the lines before the sentinel, joined
/// with `\n`, are exactly the bytes the cell wrote, final newline or not.
pub fn output_before_sentinel(lines: &[String]) -> Option<String> {
    let end = lines.iter().position(|l| l == runtime::PLAIN_SENTINEL)?;
    Some(lines[..end].join("\n"))
}

pub fn run(
    engine: &Engine,
    lesson: &Lesson,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<PlainRun> {
    let mut run = PlainRun::default();
    let plain: Vec<usize> = (0..lesson.cells.len())
        .filter(|&i| lesson.cells[i].kind == CellKind::Plain)
        .collect();
    if plain.is_empty() {
        return Ok(run);
    }
    let mut kernel = match engine.pool.take() {
        Ok(k) => k,
        Err(e) => {
            // Reported on each cell, so the run still says what it could not do.
            for index in plain {
                let result = CellResult {
                    line: lesson.cell(index).line,
                    verdict: Verdict::Crashed,
                    checked: lesson.cell(index).expected.is_some(),
                    duration: Duration::ZERO,
                    failure: Some(Failure {
                        message: format!("aula could not run this cell: {e:#}"),
                        ..Default::default()
                    }),
                    cached: false,
                };
                on_event(Event::CellFinished(lesson, &result));
                run.entries.push((
                    index,
                    PlainEntry {
                        result,
                        replay: None,
                    },
                ));
            }
            return Ok(run);
        }
    };
    for index in plain {
        if sandbox::interrupted() {
            break;
        }
        let (mut result, mut ran_through) = run_cell(engine, &mut kernel, lesson, index, false)?;
        let mut wrapped = false;
        if result.persist_failure {
            (result, ran_through) = run_cell(engine, &mut kernel, lesson, index, true)?;
            wrapped = true;
        }
        if sandbox::interrupted() {
            break;
        }
        let result = result.result;
        on_event(Event::CellFinished(lesson, &result));
        let replay = ran_through.then_some(wrapped);
        run.entries.push((index, PlainEntry { result, replay }));
    }
    engine.pool.give_back(kernel);
    Ok(run)
}

struct Attempt {
    persist_failure: bool,
    result: CellResult,
}

fn run_cell(
    engine: &Engine,
    kernel: &mut Kernel,
    lesson: &Lesson,
    index: usize,
    wrapped: bool,
) -> Result<(Attempt, bool)> {
    let cell = lesson.cell(index);
    let capture = Capture::create(engine.capture_dir(&format!("cell-{}", cell.line)))?;
    let opts = engine.options.clone();
    // Output goes to the capture files, out of evcxr's way, unless the
    // cell's own `?` could return early past the statement that restores it.
    let piped = shape::uses_question_mark(&cell.code);
    let dir = capture.dir_str();
    let mut map = SourceMap::new();
    if piped {
        map.push(&runtime::piped_prefix(&dir), None);
    } else {
        map.push(&runtime::plain_prefix(&dir), None);
    }
    push_cell(&mut map, cell, wrapped);
    if piped {
        map.push(runtime::PIPED_SUFFIX, None);
    } else {
        map.push(&runtime::plain_suffix(&dir), None);
    }

    let start = Instant::now();
    let flooded: Box<dyn Fn() -> bool + Send> = if piped {
        let buffer = kernel.stdout.clone();
        Box::new(move || buffer.overflowed())
    } else {
        let file = capture.stdout_path();
        let cap = opts.output_cap as u64;
        Box::new(move || std::fs::metadata(&file).is_ok_and(|m| m.len() > cap))
    };
    let watchdog = Watchdog::spawn(kernel.killer(), flooded, opts.cell_timeout);
    let evaluated = kernel.eval(map);
    let stopped = watchdog.stop();

    let output = if piped {
        // evcxr returns once its channel is empty, but the line it handed
        // over last may still be on its way into the buffer.
        let wait_until = Instant::now() + Duration::from_secs(2);
        while evaluated.is_ok()
            && !kernel.stdout.contains(runtime::PLAIN_SENTINEL)
            && Instant::now() < wait_until
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        output_before_sentinel(&kernel.stdout.snapshot())
    } else {
        capture
            .finished()
            .then(|| capture.stdout(opts.output_cap).text)
    };
    let faults = capture.faults();
    let stderr = if piped {
        kernel.stderr.snapshot().join("\n")
    } else {
        capture.stderr(64 * 1024).text
    };

    let fail = |verdict, message: String| {
        (
            verdict,
            Some(Failure {
                message,
                ..Default::default()
            }),
        )
    };
    let (verdict, failure) = match (&evaluated, stopped) {
        (_, STOPPED_TIMEOUT) => fail(
            Verdict::Timeout,
            format!(
                "the cell ran for more than {} s and was stopped",
                opts.cell_timeout.as_secs_f64()
            ),
        ),
        (_, STOPPED_FLOOD) => fail(
            Verdict::OutputLimit,
            format!(
                "the cell wrote more than {} bytes to stdout and was stopped",
                opts.output_cap
            ),
        ),
        (Err(EvalError::Compile(diagnostics)), _) => (
            Verdict::CompileError,
            Some(Failure {
                message: "the cell does not compile".to_owned(),
                diagnostics: diagnostics.clone(),
                ..Default::default()
            }),
        ),
        (Err(EvalError::Other(msg)), _) => fail(Verdict::CompileError, msg.clone()),
        (Err(EvalError::Terminated(msg)), _) => fail(
            Verdict::Crashed,
            format!("the cell's process died: {}", msg.trim()),
        ),
        (Ok(()), _) if !faults.is_empty() => fail(
            Verdict::Panic,
            format!("the cell panicked: {}", faults[0].message),
        ),
        (Ok(()), _) if output.is_none() => fail(
            Verdict::Panic,
            if piped {
                format!("the cell stopped at a `?` with an error: {}", stderr.trim())
            } else {
                format!("the cell stopped before its end: {}", stderr.trim())
            },
        ),
        (Ok(()), _) => match (&cell.expected, &output) {
            (Some(expected), Some(actual)) => {
                let placeholders = Placeholders {
                    host: &opts.host,
                    port: None,
                };
                match compare(&expected.text, actual, placeholders) {
                    None => (Verdict::Pass, None),
                    Some(diff) => (
                        Verdict::Mismatch,
                        Some(Failure {
                            message: "the cell's output differs from the expected output"
                                .to_owned(),
                            diff: Some(diff),
                            ..Default::default()
                        }),
                    ),
                }
            }
            _ => (Verdict::Pass, None),
        },
    };
    let ran_through = evaluated.is_ok() && faults.is_empty() && output.is_some();
    Ok((
        Attempt {
            persist_failure: cannot_persist(&evaluated),
            result: CellResult {
                line: cell.line,
                verdict,
                checked: cell.expected.is_some(),
                duration: start.elapsed(),
                failure,
                cached: false,
            },
        },
        ran_through,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_rebuilt_exactly_from_lines() {
        let s = runtime::PLAIN_SENTINEL;
        let table: &[(&[&str], Option<&str>)] = &[
            (&["a", "", s], Some("a\n")),
            (&["a", s], Some("a")),
            (&["", s], Some("")),
            (&["a", "", "", s], Some("a\n\n")),
            (&["a", "b", s, "late"], Some("a\nb")),
            (&["a", "b"], None),
        ];
        for (lines, want) in table {
            let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            assert_eq!(
                output_before_sentinel(&lines).as_deref(),
                *want,
                "{lines:?}"
            );
        }
    }
}
