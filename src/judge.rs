//! Verdicts from observations: pure code over data, one policy for plain
//! cells and exercises alike.
//!
//! An exercise's verdict is its first cause, not its consequences: a server
//! that does not compile is the verdict, not the client that then had nobody
//! to talk to. The precedence: compile error, runner failure, output limit,
//! a server that never listened (or its own fault), a cell's fault, timeout,
//! mismatch.

use crate::compare::{Placeholders, compare};
use crate::lesson::{Exercise, Lesson};
use crate::observation::{
    Bounds, CellObservation, Ending, ExerciseObservation, Fault, FaultKind, PlainObservation, Stop,
};
use crate::outcome::{Cause, CellResult, ExerciseResult, Role, Verdict};

fn fault_cause(f: &Fault) -> Cause {
    match f.kind {
        FaultKind::Error => Cause::ReturnedError {
            message: f.message.clone(),
        },
        FaultKind::Panic => Cause::Panicked {
            thread: f.thread.clone(),
            line: (f.cell_line > 0).then_some(f.cell_line),
            message: f.message.clone(),
        },
    }
}

/// A fault of the cell itself (panic, `?` error, death), which causes what
/// follows it.
fn own_fault(o: &CellObservation) -> Option<(Verdict, Cause)> {
    if let Some(f) = o.faults.first() {
        return Some((Verdict::Panic, fault_cause(f)));
    }
    if let Some(f) = o.replay_faults.first().filter(|_| !o.started) {
        return Some((
            Verdict::Panic,
            Cause::ReplayPanicked {
                message: f.message.clone(),
            },
        ));
    }
    if let Ending::Died(status) = &o.ending
        && o.stopped.is_none()
    {
        return Some((
            Verdict::Crashed,
            Cause::Died {
                status: status.clone(),
            },
        ));
    }
    None
}

/// Failures that end a cell before its output means anything.
fn hard_failure(o: &CellObservation, bounds: Bounds) -> Option<(Verdict, Cause)> {
    match &o.ending {
        Ending::DoesNotCompile(_) => return Some((Verdict::CompileError, Cause::DoesNotCompile)),
        Ending::Refused(construct) => {
            return Some((
                Verdict::CompileError,
                Cause::Refused {
                    construct: construct.clone(),
                },
            ));
        }
        Ending::RunnerFailed(message) => {
            return Some((
                Verdict::Crashed,
                Cause::RunnerFailed {
                    message: message.clone(),
                },
            ));
        }
        _ => {}
    }
    if o.stopped == Some(Stop::Flood) {
        return Some((
            Verdict::OutputLimit,
            Cause::OutputLimit {
                bytes: o.stdout_bytes,
                cap: bounds.output_cap,
            },
        ));
    }
    None
}

/// One cell of an exercise on its own.
fn exercise_cell(
    lesson: &Lesson,
    o: &CellObservation,
    role: Role,
    placeholders: Placeholders<'_>,
    bounds: Bounds,
    limit: std::time::Duration,
    kept_running: bool,
) -> CellResult {
    let mut r = CellResult::new(o.cell, Some(role), Verdict::Pass);
    r.duration = o.duration;
    let stderr = o.stderr.trim();
    if !stderr.is_empty() {
        r.stderr = Some(stderr.to_owned());
    }
    if let Ending::DoesNotCompile(d) = &o.ending {
        r.diagnostics = d.clone();
    }
    // A compiler stopped at the limit is the cell's ending, whatever evcxr
    // made of the compile it lost.
    let compile_too_long = (o.stopped == Some(Stop::CompileDeadline)).then_some((
        Verdict::Timeout,
        Cause::CompileTooLong {
            limit: bounds.compile_limit,
        },
    ));
    let failed = compile_too_long
        .or_else(|| hard_failure(o, bounds))
        .or_else(|| own_fault(o))
        .or_else(|| match o.stopped {
            Some(Stop::Deadline) => Some((
                Verdict::Timeout,
                Cause::StillRunning {
                    cells: Vec::new(),
                    limit,
                },
            )),
            Some(Stop::Cleanup) if !o.started => Some((Verdict::Skipped, Cause::StoppedEarly)),
            _ if o.ending == Ending::NotRun => Some((Verdict::Skipped, Cause::StoppedEarly)),
            _ => None,
        });
    if let Some((verdict, cause)) = failed {
        r.verdict = verdict;
        r.cause = Some(cause);
        return r;
    }
    r.actual = Some(o.stdout.clone());
    if let Some(expected) = &lesson.cell(o.cell).expected
        && let Some(diff) = compare(&expected.text, &o.stdout, placeholders)
    {
        r.verdict = Verdict::Mismatch;
        r.cause = Some(Cause::Differs {
            cells: Vec::new(),
            server_kept_running: kept_running,
        });
        r.diff = Some(diff);
    }
    r
}

/// An exercise's verdict, its cause, and the cell that decided it.
type Decision = (Verdict, Option<Cause>, Option<usize>);

/// Every cell of an exercise with its role: the server, then the clients.
fn roles(obs: &ExerciseObservation) -> Vec<(&CellObservation, Role)> {
    std::iter::once((&obs.server, Role::Server))
        .chain(
            obs.clients
                .iter()
                .enumerate()
                .map(|(i, c)| (c, Role::Client(i))),
        )
        .collect()
}

/// Each cell judged on its own, with the port it saw in its output.
fn exercise_cells(
    lesson: &Lesson,
    ex: &Exercise,
    obs: &ExerciseObservation,
    all: &[(&CellObservation, Role)],
    bounds: Bounds,
) -> Vec<CellResult> {
    let placeholders = Placeholders {
        host: &obs.host,
        port: Some(obs.port),
    };
    all.iter()
        .map(|(o, role)| {
            let kept = *role == Role::Server && obs.server_kept_running;
            // Behind a relay the server has a port of its own, and so does
            // a client with faults on the wire.
            let port = match (role, obs.server_port) {
                (Role::Server, Some(port)) => port,
                _ => o.port.unwrap_or(obs.port),
            };
            let placeholders = Placeholders {
                port: Some(port),
                ..placeholders
            };
            exercise_cell(lesson, o, *role, placeholders, bounds, ex.timeout, kept)
        })
        .collect()
}

/// The failures that make everything after them not the cells' doing:
/// compile errors (and output past the cap), a compiler stopped at the
/// limit, the runner's own failures.
fn decided_before_running(cells: &[CellResult]) -> Option<Decision> {
    let first = |verdicts: &[Verdict]| cells.iter().position(|c| verdicts.contains(&c.verdict));
    for v in [Verdict::CompileError, Verdict::OutputLimit] {
        if let Some(i) = first(&[v]) {
            return Some((v, cells[i].cause.clone(), Some(i)));
        }
    }
    if let Some(i) = cells
        .iter()
        .position(|c| matches!(c.cause, Some(Cause::CompileTooLong { .. })))
    {
        return Some((Verdict::Timeout, cells[i].cause.clone(), Some(i)));
    }
    cells
        .iter()
        .position(|c| matches!(c.cause, Some(Cause::RunnerFailed { .. })))
        .map(|i| (Verdict::Crashed, cells[i].cause.clone(), Some(i)))
}

/// A server that never bound its port: its own fault when it had one,
/// otherwise why it did not bind (still running at the limit, still
/// compiling, or ended), which becomes the server cell's verdict too.
fn not_bound(
    ex: &Exercise,
    obs: &ExerciseObservation,
    bounds: Bounds,
    cells: &mut [CellResult],
) -> Decision {
    if let Some((v, cause)) = own_fault(&obs.server) {
        return (v, Some(cause), Some(0));
    }
    let cause = if obs.timed_out && obs.server.started {
        Cause::NotBound {
            port: obs.port,
            limit: ex.timeout,
        }
    } else if obs.timed_out {
        Cause::CompileTooLong {
            limit: bounds.compile_limit,
        }
    } else {
        Cause::EndedWithoutBinding { port: obs.port }
    };
    cells[0].verdict = Verdict::NotListening;
    cells[0].cause = Some(cause.clone());
    (Verdict::NotListening, Some(cause), Some(0))
}

/// Once the server bound: a cell's own fault, then the time limit, clients
/// that never ran, and outputs that differ, in that order.
fn decided_while_running(
    ex: &Exercise,
    obs: &ExerciseObservation,
    all: &[(&CellObservation, Role)],
    cells: &[CellResult],
) -> Decision {
    if let Some(i) = all.iter().position(|(o, _)| own_fault(o).is_some()) {
        return (cells[i].verdict, cells[i].cause.clone(), Some(i));
    }
    if obs.timed_out {
        let still: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, (o, _))| o.stopped == Some(Stop::Deadline))
            .map(|(i, _)| i)
            .collect();
        let decided = still.first().copied();
        let cause = Cause::StillRunning {
            cells: still,
            limit: ex.timeout,
        };
        return (Verdict::Timeout, Some(cause), decided);
    }
    if obs.clients.iter().any(|c| c.ending == Ending::NotRun) {
        return (Verdict::Timeout, Some(Cause::StoppedEarly), None);
    }
    // Clients first, then the server: the order a reader follows.
    let differ: Vec<usize> = (1..cells.len())
        .chain([0])
        .filter(|&i| cells[i].verdict == Verdict::Mismatch)
        .collect();
    if let Some(&i) = differ.first() {
        let cause = Cause::Differs {
            cells: differ,
            server_kept_running: obs.server_kept_running,
        };
        return (Verdict::Mismatch, Some(cause), Some(i));
    }
    (Verdict::Pass, None, None)
}

/// The verdict of an exercise, and of each of its cells.
pub fn exercise(
    lesson: &Lesson,
    ex: &Exercise,
    obs: &ExerciseObservation,
    bounds: Bounds,
) -> ExerciseResult {
    let all = roles(obs);
    let mut cells = exercise_cells(lesson, ex, obs, &all, bounds);
    let (verdict, cause, decided_by) = match decided_before_running(&cells) {
        Some(decision) => decision,
        None if !obs.bound => not_bound(ex, obs, bounds, &mut cells),
        None => decided_while_running(ex, obs, &all, &cells),
    };
    let duration = all
        .iter()
        .map(|(o, _)| o.duration)
        .max()
        .unwrap_or_default();
    ExerciseResult {
        id: ex.id.clone(),
        verdict,
        cause,
        decided_by,
        cells,
        points: ex.points,
        duration,
        port: Some(obs.port),
        cached: false,
        // Every exercise's, for captures (`--pcap`); reports show it
        // under a failure only.
        wire: obs.wire.clone(),
    }
}

/// The verdict of a plain cell.
pub fn plain(lesson: &Lesson, o: &PlainObservation, bounds: Bounds, host: &str) -> CellResult {
    let mut r = CellResult::new(o.cell, None, Verdict::Pass);
    r.duration = o.duration;
    let verdict_cause = match (&o.ending, o.stopped) {
        (_, Some(Stop::CompileDeadline)) => Some((
            Verdict::Timeout,
            Cause::CompileTooLong {
                limit: bounds.compile_limit,
            },
        )),
        (_, Some(Stop::Deadline)) => Some((
            Verdict::Timeout,
            Cause::StillRunning {
                cells: Vec::new(),
                limit: bounds.cell_timeout,
            },
        )),
        (_, Some(Stop::Flood)) => Some((
            Verdict::OutputLimit,
            Cause::OutputLimit {
                bytes: 0,
                cap: bounds.output_cap,
            },
        )),
        (Ending::DoesNotCompile(d), _) => {
            r.diagnostics = d.clone();
            Some((Verdict::CompileError, Cause::DoesNotCompile))
        }
        (Ending::Refused(c), _) => Some((
            Verdict::CompileError,
            Cause::Refused {
                construct: c.clone(),
            },
        )),
        (Ending::RunnerFailed(m), _) => {
            Some((Verdict::Crashed, Cause::RunnerFailed { message: m.clone() }))
        }
        (Ending::Died(status), _) => Some((
            Verdict::Crashed,
            Cause::Died {
                status: status.clone(),
            },
        )),
        (Ending::NotRun, _) => Some((Verdict::Skipped, Cause::StoppedEarly)),
        _ if !o.faults.is_empty() => Some((Verdict::Panic, fault_cause(&o.faults[0]))),
        _ if o.output.is_none() => Some((
            Verdict::Panic,
            Cause::CellStopped {
                stderr: o.stderr.trim().to_owned(),
                question_mark: o.piped,
            },
        )),
        _ => None,
    };
    if let Some((verdict, cause)) = verdict_cause {
        r.verdict = verdict;
        r.cause = Some(cause);
        return r;
    }
    r.actual = o.output.clone();
    let placeholders = Placeholders { host, port: None };
    if let (Some(expected), Some(actual)) = (&lesson.cell(o.cell).expected, &o.output)
        && let Some(diff) = compare(&expected.text, actual, placeholders)
    {
        r.verdict = Verdict::Mismatch;
        r.cause = Some(Cause::Differs {
            cells: Vec::new(),
            server_kept_running: false,
        });
        r.diff = Some(diff);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Ending::*;
    use std::path::Path;
    use std::time::Duration;

    const LESSON: &str = "```rust,server,exercise=e\nserve();\n```\n\n```output\nserved\n```\n\n\
```rust,client,exercise=e\nask();\n```\n\n```output\nanswer\n```\n\n\
```rust,client,exercise=e\nask();\n```\n\n```output\nanswer\n```\n";

    const BOUNDS: Bounds = Bounds {
        output_cap: 100,
        cell_timeout: Duration::from_secs(10),
        compile_limit: Duration::from_secs(60),
    };

    fn ok(cell: usize, out: &str) -> CellObservation {
        CellObservation {
            ending: Returned,
            started: true,
            stdout: out.to_owned(),
            stdout_bytes: out.len() as u64,
            ..CellObservation::not_run(cell)
        }
    }

    fn passing() -> ExerciseObservation {
        ExerciseObservation {
            server: ok(0, "served\n"),
            clients: vec![ok(1, "answer\n"), ok(2, "answer\n")],
            bound: true,
            timed_out: false,
            server_kept_running: false,
            port: 4000,
            host: "127.0.0.1".into(),
            server_port: None,
            wire: None,
        }
    }

    fn panic_fault() -> Fault {
        Fault {
            kind: FaultKind::Panic,
            cell_line: 1,
            thread: "main".into(),
            message: "boom".into(),
        }
    }

    fn judged(change: impl Fn(&mut ExerciseObservation)) -> ExerciseResult {
        let lesson = crate::lesson::parse(Path::new("l.md"), LESSON).unwrap();
        let mut obs = passing();
        change(&mut obs);
        exercise(&lesson, &lesson.exercises[0], &obs, BOUNDS)
    }

    /// Each row: what went wrong, and the verdict that must win. Rows stack
    /// a cause over its consequences, so the table is the precedence.
    #[test]
    fn the_first_cause_wins_over_its_consequences() {
        type Change = Box<dyn Fn(&mut ExerciseObservation)>;
        let table: Vec<(&str, Change, Verdict, Option<usize>)> = vec![
            ("all well", Box::new(|_| {}), Verdict::Pass, None),
            (
                "client 2 compile error, server floods, not bound",
                Box::new(|o| {
                    o.clients[1].ending = DoesNotCompile(vec![]);
                    o.server.stopped = Some(Stop::Flood);
                    o.bound = false;
                }),
                Verdict::CompileError,
                Some(2),
            ),
            (
                "server floods, so it never bound and timed out",
                Box::new(|o| {
                    o.server.stopped = Some(Stop::Flood);
                    o.bound = false;
                    o.timed_out = true;
                }),
                Verdict::OutputLimit,
                Some(0),
            ),
            (
                "runner failed on client 1",
                Box::new(|o| o.clients[0].ending = RunnerFailed("evcxr panicked".into())),
                Verdict::Crashed,
                Some(1),
            ),
            (
                "server panicked before binding; clients never ran",
                Box::new(|o| {
                    o.bound = false;
                    o.server.faults = vec![panic_fault()];
                    o.clients = vec![CellObservation::not_run(1), CellObservation::not_run(2)];
                }),
                Verdict::Panic,
                Some(0),
            ),
            (
                "server ended without binding",
                Box::new(|o| {
                    o.bound = false;
                    o.clients[1] = CellObservation::not_run(2);
                }),
                Verdict::NotListening,
                Some(0),
            ),
            (
                "client 1 panicked, then everything timed out",
                Box::new(|o| {
                    o.clients[0].faults = vec![panic_fault()];
                    o.timed_out = true;
                    o.server.stopped = Some(Stop::Deadline);
                }),
                Verdict::Panic,
                Some(1),
            ),
            (
                "client 2 died by a signal, and output differs",
                Box::new(|o| {
                    o.clients[1].ending = Died("signal: 6 (SIGABRT)".into());
                    o.clients[0].stdout = "wrong".into();
                }),
                Verdict::Crashed,
                Some(2),
            ),
            (
                "a client hung past the deadline; output differs",
                Box::new(|o| {
                    o.timed_out = true;
                    o.clients[0].stopped = Some(Stop::Deadline);
                    o.server.stdout = "nothing".into();
                }),
                Verdict::Timeout,
                Some(1),
            ),
            (
                "server output differs",
                Box::new(|o| o.server.stdout = "other\n".into()),
                Verdict::Mismatch,
                Some(0),
            ),
            (
                "client 2 and the server differ: the client is named first",
                Box::new(|o| {
                    o.server.stdout = "other\n".into();
                    o.clients[1].stdout = "other\n".into();
                }),
                Verdict::Mismatch,
                Some(2),
            ),
        ];
        for (what, change, verdict, decided) in table {
            let r = judged(change);
            assert_eq!(r.verdict, verdict, "{what}: {r:#?}");
            assert_eq!(r.decided_by, decided, "{what}");
        }
    }

    #[test]
    fn each_cell_gets_its_own_verdict() {
        let r = judged(|o| {
            o.clients[0].stdout = "wrong\n".into();
            o.clients[1] = CellObservation::not_run(2);
        });
        let verdicts: Vec<Verdict> = r.cells.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            vec![Verdict::Pass, Verdict::Mismatch, Verdict::Skipped]
        );
        assert!(r.cells[1].diff.as_deref().unwrap().contains("+wrong"));
        assert_eq!(r.cells[2].role, Some(Role::Client(1)));
        // A client stopped early makes the exercise time out, not mismatch:
        // it did not get to say everything.
        assert_eq!(r.verdict, Verdict::Timeout);

        let r = judged(|o| o.clients[1].stdout = "wrong\n".into());
        assert_eq!(r.verdict, Verdict::Mismatch);
        assert_eq!(
            r.cause,
            Some(Cause::Differs {
                cells: vec![2],
                server_kept_running: false
            })
        );
        assert_eq!(r.diff(), r.cells[2].diff.clone());
    }

    #[test]
    fn a_returned_error_is_a_panic_with_its_own_cause() {
        let r = judged(|o| {
            o.clients[0].faults = vec![Fault {
                kind: FaultKind::Error,
                cell_line: 0,
                thread: "main".into(),
                message: "connection refused".into(),
            }]
        });
        assert_eq!(r.verdict, Verdict::Panic);
        assert_eq!(
            r.cause,
            Some(Cause::ReturnedError {
                message: "connection refused".into()
            })
        );
    }

    #[test]
    fn plain_cells_time_out_before_anything_else() {
        let lesson =
            crate::lesson::parse(Path::new("l.md"), "```rust\nx\n```\n```output\n1\n```\n")
                .unwrap();
        let base = PlainObservation {
            cell: 0,
            ending: Returned,
            stopped: None,
            output: Some("1\n".into()),
            stderr: String::new(),
            faults: vec![],
            piped: false,
            duration: Duration::ZERO,
        };
        let v = |o: PlainObservation| plain(&lesson, &o, BOUNDS, "127.0.0.1").verdict;
        assert_eq!(v(base.clone()), Verdict::Pass);
        let table = [
            (
                PlainObservation {
                    stopped: Some(Stop::Deadline),
                    ending: Died("killed".into()),
                    ..base.clone()
                },
                Verdict::Timeout,
            ),
            (
                PlainObservation {
                    stopped: Some(Stop::Flood),
                    ..base.clone()
                },
                Verdict::OutputLimit,
            ),
            (
                PlainObservation {
                    ending: DoesNotCompile(vec![]),
                    ..base.clone()
                },
                Verdict::CompileError,
            ),
            (
                PlainObservation {
                    faults: vec![panic_fault()],
                    output: None,
                    ..base.clone()
                },
                Verdict::Panic,
            ),
            (
                PlainObservation {
                    output: None,
                    ..base.clone()
                },
                Verdict::Panic,
            ),
            (
                PlainObservation {
                    output: Some("2".into()),
                    ..base.clone()
                },
                Verdict::Mismatch,
            ),
        ];
        for (o, want) in table {
            assert_eq!(v(o.clone()), want, "{o:?}");
        }
    }
}
