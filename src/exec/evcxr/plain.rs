//! Plain cells: the notebook part of a lesson, run top to bottom in one
//! context so later cells see earlier cells' items and variables.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::kernel::{EvalError, Kernel, Killer};
use super::source::{CodeLine, SourceMap};
use super::{runtime, shape};
use crate::exec::{Cancel, Engine};
use crate::lesson::{Cell, CellKind, Lesson};
use crate::observation::{Ending, PlainObservation, Stop};

/// Appends a plain cell's code the way it ran in the lesson's context.
pub fn push_cell(map: &mut SourceMap, cell: &Cell, index: usize, wrapped: bool) {
    if wrapped {
        map.push("{", None);
    }
    map.push(
        &cell.code,
        Some(CodeLine {
            cell: index,
            line: 1,
        }),
    );
    if wrapped {
        map.push("}", None);
    } else if shape::ends_with_expression(&cell.code) {
        map.push(";", None);
    }
}

/// Kills the context when the cell runs too long, prints too much, or the
/// run is cancelled. Stops watching when dropped.
struct Watchdog {
    reason: Arc<AtomicU8>,
    done: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const NOT_STOPPED: u8 = 0;
const BY_DEADLINE: u8 = 1;
const BY_FLOOD: u8 = 2;
const BY_CANCEL: u8 = 3;
const BY_COMPILE_DEADLINE: u8 = 4;

impl Watchdog {
    /// The clock starts when `started` says the cell's code runs, so
    /// compiling (slow on a loaded machine) does not count against it; a
    /// compile that outlasts `compile_limit` is stopped all the same.
    fn spawn(
        killer: Killer,
        flooded: impl Fn() -> bool + Send + 'static,
        started: impl Fn() -> bool + Send + 'static,
        (limit, compile_limit): (Duration, Duration),
        cancel: Cancel,
    ) -> Watchdog {
        let reason = Arc::new(AtomicU8::new(NOT_STOPPED));
        let done = Arc::new(AtomicU8::new(0));
        let thread = {
            let (reason, done) = (Arc::clone(&reason), Arc::clone(&done));
            std::thread::spawn(move || {
                let begun = Instant::now();
                let mut running_since: Option<Instant> = None;
                while done.load(Ordering::SeqCst) == 0 {
                    if running_since.is_none() && started() {
                        running_since = Some(Instant::now());
                    }
                    let why = if cancel.is_cancelled() {
                        BY_CANCEL
                    } else if running_since.is_some_and(|t| t.elapsed() > limit) {
                        BY_DEADLINE
                    } else if running_since.is_none() && begun.elapsed() > compile_limit {
                        BY_COMPILE_DEADLINE
                    } else if flooded() {
                        BY_FLOOD
                    } else {
                        NOT_STOPPED
                    };
                    if why != NOT_STOPPED {
                        reason.store(why, Ordering::SeqCst);
                        killer.kill();
                        if running_since.is_none() {
                            killer.kill_compiler();
                        }
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

    fn stop(mut self) -> Option<Stop> {
        self.done.store(1, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match self.reason.load(Ordering::SeqCst) {
            BY_DEADLINE => Some(Stop::Deadline),
            BY_COMPILE_DEADLINE => Some(Stop::CompileDeadline),
            BY_FLOOD => Some(Stop::Flood),
            BY_CANCEL => Some(Stop::Cleanup),
            _ => None,
        }
    }
}

/// Rebuilds what the cell printed from evcxr's lines. The cell's output is
/// followed by `\n<sentinel>\n`, so the lines before the sentinel, joined
/// with `\n`, are exactly the bytes the cell wrote, final newline or not.
pub fn output_before_sentinel(lines: &[String]) -> Option<String> {
    let end = lines.iter().position(|l| l == runtime::PLAIN_SENTINEL)?;
    Some(lines[..end].join("\n"))
}

/// A plain cell as it ran, and whether it ran as a block.
pub struct PlainRun {
    pub observation: PlainObservation,
    pub wrapped: bool,
}

/// Runs every plain cell of the lesson in order, in one context; stops
/// early (returning what ran) when the run is cancelled.
pub fn run(engine: &Engine, lesson: &Lesson, cancel: &Cancel) -> Vec<PlainRun> {
    let plain: Vec<usize> = (0..lesson.cells.len())
        .filter(|&i| lesson.cells[i].kind == CellKind::Plain)
        .collect();
    if plain.is_empty() {
        return Vec::new();
    }
    let mut kernel = match engine.lane(0).pool.take() {
        Ok(k) => k,
        Err(e) => {
            // Reported on each cell, so the run still says what it could not do.
            let message = format!("aula could not start evcxr: {e:#}");
            return plain
                .into_iter()
                .map(|cell| PlainRun {
                    observation: PlainObservation::ended(
                        cell,
                        Ending::RunnerFailed(message.clone()),
                    ),
                    wrapped: false,
                })
                .collect();
        }
    };
    let mut runs = Vec::new();
    for index in plain {
        if cancel.is_cancelled() {
            break;
        }
        let mut wrapped = false;
        let mut ran = run_cell(engine, &mut kernel, lesson, index, false, cancel);
        if matches!(ran, Err(EvalError::CannotPersist)) {
            wrapped = true;
            ran = run_cell(engine, &mut kernel, lesson, index, true, cancel);
        }
        let observation = match ran {
            Ok(o) => o,
            Err(e) => PlainObservation::ended(index, e.into_ending()),
        };
        if cancel.is_cancelled() {
            break;
        }
        runs.push(PlainRun {
            observation,
            wrapped,
        });
    }
    engine.lane(0).pool.give_back(kernel);
    runs
}

/// One plain cell. `Err` only for evcxr's refusal to keep its variables,
/// which the caller answers by running it again as a block.
fn run_cell(
    engine: &Engine,
    kernel: &mut Kernel,
    lesson: &Lesson,
    index: usize,
    wrapped: bool,
    cancel: &Cancel,
) -> Result<PlainObservation, EvalError> {
    let cell = lesson.cell(index);
    let opts = &engine.options;
    match engine.crates(&lesson.crates_of_cell(index)) {
        Ok(crates) => kernel.link_crates(crates),
        Err(e) => {
            return Err(EvalError::Other(format!(
                "the lesson's crates could not be built:\n{e}"
            )));
        }
    }
    let capture = match engine.new_capture(kernel, &format!("cell-{}", cell.line())) {
        Ok(c) => c,
        Err(e) => return Err(EvalError::Other(format!("creating a capture folder: {e}"))),
    };
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
    push_cell(&mut map, cell, index, wrapped);
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
        match capture.stdout_over(opts.output_cap as u64) {
            Ok(over) => Box::new(over),
            Err(e) => return Err(EvalError::Other(format!("watching a capture file: {e}"))),
        }
    };
    let started = capture.started_probe();
    let watchdog = Watchdog::spawn(
        kernel.killer(),
        flooded,
        started,
        (opts.cell_timeout, opts.compile_limit),
        cancel.clone(),
    );
    let evaluated = kernel.eval(map);
    let stopped = watchdog.stop();
    if matches!(evaluated, Err(EvalError::CannotPersist)) && !wrapped {
        return Err(EvalError::CannotPersist);
    }

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
    let stderr = if piped {
        kernel.stderr.snapshot().join("\n")
    } else {
        capture.stderr(64 * 1024).text
    };
    Ok(PlainObservation {
        cell: index,
        ending: match evaluated {
            Ok(()) => Ending::Returned,
            Err(e) => e.into_ending(),
        },
        stopped,
        output,
        stderr,
        faults: capture.faults(),
        piped,
        duration: start.elapsed(),
    })
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
