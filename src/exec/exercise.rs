//! One exercise: a server and its clients, running at once on a free port.
//!
//! The server and the first client compile side by side; the client's code
//! waits at a gate until the server has bound `PORT`, so compiling never
//! waits for listening, only running does. One loop here watches everything
//! (bind, deadline, output sizes) and does all the killing.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::capture::{Capture, Captured, Fault};
use super::kernel::{EvalError, Kernel, Killer};
use super::plain::{Replay, push_cell};
use super::source::SourceMap;
use super::{Engine, ports, runtime, sandbox};
use crate::compare::{Placeholders, compare};
use crate::lesson::{Cell, Exercise, Lesson};
use crate::outcome::{ExerciseResult, Failure, Verdict};

/// How long a server may take to compile (and replay plain cells) before
/// its run starts the exercise's clock. Generous: compiling is not the
/// student's fault, but a wedged compiler must not hang the run.
const COMPILE_LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Client(usize),
}

impl Role {
    fn describe(self, line: usize) -> String {
        match self {
            Role::Server => format!("the server (line {line})"),
            Role::Client(i) => format!("client {} (line {line})", i + 1),
        }
    }
}

/// Why the runner killed a cell's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Deadline,
    Flood,
    /// The exercise was already decided (or the server's grace ran out).
    Cleanup,
}

/// A cell's evaluation, running on its own thread with its context.
struct Running {
    role: Role,
    cell: usize,
    capture: Capture,
    killer: Killer,
    thread: Option<JoinHandle<(Kernel, Result<(), EvalError>)>>,
    stopped: Option<Stop>,
}

/// A cell after it ran.
struct Ran {
    role: Role,
    line: usize,
    expected: Option<String>,
    eval: Result<(), EvalError>,
    stopped: Option<Stop>,
    started: bool,
    stdout: Captured,
    stderr: Captured,
    faults: Vec<Fault>,
    replay_faults: Vec<Fault>,
}

impl Running {
    fn start(
        mut kernel: Kernel,
        role: Role,
        cell: usize,
        capture: Capture,
        map: SourceMap,
    ) -> Running {
        let killer = kernel.killer();
        let thread = std::thread::spawn(move || {
            let r = kernel.eval(map);
            (kernel, r)
        });
        Running {
            role,
            cell,
            capture,
            killer,
            thread: Some(thread),
            stopped: None,
        }
    }

    fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    fn stop(&mut self, why: Stop) {
        if self.stopped.is_none() && !self.is_finished() {
            self.stopped = Some(why);
            self.killer.kill();
        }
    }

    /// Waits for the evaluation to return: the caller has made sure it ends
    /// (it finished, or it was killed and evcxr notices at once).
    fn join(mut self, lesson: &Lesson, cap: usize) -> (Kernel, Ran) {
        let (kernel, eval) = self
            .thread
            .take()
            .expect("joined once")
            .join()
            .expect("evaluation thread does not panic");
        let cell = lesson.cell(self.cell);
        let ran = Ran {
            role: self.role,
            line: cell.line,
            expected: cell.expected.as_ref().map(|e| e.text.clone()),
            eval,
            stopped: self.stopped,
            started: self.capture.started(),
            stdout: self.capture.stdout(cap),
            stderr: self.capture.stderr(64 * 1024),
            faults: self.capture.faults(),
            replay_faults: self.capture.replay_faults(),
        };
        (kernel, ran)
    }
}

/// The code evaluated for an exercise cell: the plain cells above it again
/// (their output discarded), then the cell wrapped by the runtime.
fn cell_code(
    lesson: &Lesson,
    replayable: &[Replay],
    cell: &Cell,
    capture: &Capture,
    gate: bool,
    host: &str,
    port: u16,
) -> SourceMap {
    let mut map = SourceMap::new();
    map.push(&runtime::exercise_open(&capture.dir_str()), None);
    for r in replayable {
        let plain = lesson.cell(r.index);
        if plain.line < cell.line {
            push_cell(&mut map, plain, r.wrapped);
        }
    }
    map.push(
        &runtime::exercise_prefix(&capture.dir_str(), gate, host, port),
        None,
    )
    .push(&cell.code, Some(cell.line + 1))
    .push(runtime::EXERCISE_SUFFIX, None);
    map
}

/// How many times an exercise is run again on a new port when its server
/// could not bind because something outside aula took the port meanwhile.
const PORT_TRIES: usize = 3;

/// Runs an exercise; `None` when the run was interrupted.
pub fn run(
    engine: &Engine,
    lesson: &Lesson,
    ex: &Exercise,
    replayable: &[Replay],
) -> Result<Option<ExerciseResult>> {
    let begun = Instant::now();
    for _ in 1..PORT_TRIES {
        let lease = ports::allocate()?;
        match attempt(engine, lesson, ex, replayable, lease.port)? {
            Some((_, true)) => continue,
            Some((mut result, false)) => {
                result.duration = begun.elapsed();
                return Ok(Some(result));
            }
            None => return Ok(None),
        }
    }
    let lease = ports::allocate()?;
    Ok(
        attempt(engine, lesson, ex, replayable, lease.port)?.map(|(mut result, _)| {
            result.duration = begun.elapsed();
            result
        }),
    )
}

/// Whether the server failed because its port was taken: not the student's
/// fault when aula handed the port out as free.
fn port_was_taken(server: &Ran) -> bool {
    let says = |t: &str| t.contains("Address already in use") || t.contains("os error 98");
    server.faults.iter().any(|f| says(&f.message)) || says(&server.stderr.text)
}

/// One run of the exercise on `port`: its result, and whether it failed
/// because the port was taken. `None` when interrupted.
fn attempt(
    engine: &Engine,
    lesson: &Lesson,
    ex: &Exercise,
    replayable: &[Replay],
    port: u16,
) -> Result<Option<(ExerciseResult, bool)>> {
    let begun = Instant::now();
    let opts = engine.options.clone();
    let host = opts.host.clone();
    let server_kernel = engine.pool.take()?;
    let mut client_kernel = Some(engine.pool.take()?);

    let start_cell = |engine: &Engine, kernel, role, index: usize, gate| -> Result<Running> {
        let name = match role {
            Role::Server => format!("{}-server", ex.id),
            Role::Client(i) => format!("{}-client{}", ex.id, i + 1),
        };
        let capture = Capture::create(engine.capture_dir(&name))?;
        let map = cell_code(
            lesson,
            replayable,
            lesson.cell(index),
            &capture,
            gate,
            &host,
            port,
        );
        Ok(Running::start(kernel, role, index, capture, map))
    };

    let mut server = start_cell(engine, server_kernel, Role::Server, ex.server, false)?;
    let mut client = Some(start_cell(
        engine,
        client_kernel.take().expect("client kernel"),
        Role::Client(0),
        ex.clients[0],
        true,
    )?);
    let mut next_client = 1;
    let mut ran_clients: Vec<Ran> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut bound = false;
    let mut timed_out = false;
    let compile_deadline = begun + COMPILE_LIMIT;

    // Every pass either waits POLL or ends the loop; each branch that ends it
    // is reached by the deadline at the latest.
    let mut interrupted = false;
    loop {
        let now = Instant::now();
        if sandbox::interrupted() {
            interrupted = true;
            server.stop(Stop::Cleanup);
            if let Some(c) = client.as_mut() {
                c.stop(Stop::Cleanup);
            }
        }
        if deadline.is_none() && server.capture.started() {
            deadline = Some(now + ex.timeout);
        }
        if !bound && ports::is_bound(port, engine.netns_pid()) {
            bound = true;
            if let Some(c) = &client {
                c.capture.open_gate();
            }
        }
        for r in std::iter::once(&mut server).chain(client.as_mut()) {
            if r.capture.stdout_bytes() > opts.output_cap as u64 {
                r.stop(Stop::Flood);
            }
        }
        let past_deadline = deadline.is_some_and(|d| now > d) || now > compile_deadline;
        if past_deadline {
            timed_out = true;
            server.stop(Stop::Deadline);
            if let Some(c) = client.as_mut() {
                c.stop(Stop::Deadline);
            }
        }
        // The server ended before any client could use it, or never started.
        if server.is_finished()
            && !bound
            && let Some(c) = client.as_mut()
        {
            c.stop(Stop::Cleanup);
        }
        if client.as_ref().is_some_and(Running::is_finished) {
            let c = client.take().expect("client present");
            let (kernel, ran) = c.join(lesson, opts.output_cap);
            let fatal = matches!(ran.eval, Err(EvalError::Compile(_)))
                || ran.stopped.is_some()
                || !bound
                || interrupted;
            ran_clients.push(ran);
            if fatal || timed_out || next_client == ex.clients.len() {
                client_kernel = Some(kernel);
                break;
            }
            // Each client in a context of its own: a fresh child, so nothing
            // the previous client left running (a thread, a socket) remains.
            let mut kernel = kernel;
            kernel.reset()?;
            let index = ex.clients[next_client];
            client = Some(start_cell(
                engine,
                kernel,
                Role::Client(next_client),
                index,
                false,
            )?);
            next_client += 1;
            continue;
        }
        std::thread::sleep(POLL);
    }

    // Give the server its grace time to end by itself, then stop it.
    let grace_end = Instant::now() + opts.grace;
    while !server.is_finished() && Instant::now() < grace_end {
        std::thread::sleep(POLL);
    }
    let server_kept_running = !server.is_finished();
    server.stop(Stop::Cleanup);
    let (server_kernel, server_ran) = server.join(lesson, opts.output_cap);
    engine.pool.give_back(server_kernel);
    if let Some(k) = client_kernel {
        engine.pool.give_back(k);
    }
    if interrupted {
        return Ok(None);
    }
    let port_taken = port_was_taken(&server_ran);

    let (verdict, failure) = judge(
        ex,
        &server_ran,
        &ran_clients,
        Judgement {
            bound,
            timed_out,
            server_kept_running,
            timeout: ex.timeout,
            output_cap: opts.output_cap,
            host: &host,
            port,
        },
    );
    let result = ExerciseResult {
        id: ex.id.clone(),
        line: ex.line,
        verdict,
        points: ex.points,
        duration: begun.elapsed(),
        failure,
        cached: false,
    };
    Ok(Some((result, port_taken && !verdict.passed())))
}

struct Judgement<'a> {
    bound: bool,
    timed_out: bool,
    server_kept_running: bool,
    timeout: Duration,
    output_cap: usize,
    host: &'a str,
    port: u16,
}

fn failure(message: String) -> Option<Failure> {
    Some(Failure {
        message,
        ..Default::default()
    })
}

fn with_stderr(mut f: Option<Failure>, ran: &Ran) -> Option<Failure> {
    let text = ran.stderr.text.trim();
    if let Some(f) = f.as_mut()
        && !text.is_empty()
    {
        f.stderr = Some(text.to_owned());
    }
    f
}

fn fault_message(ran: &Ran, fault: &Fault) -> String {
    let place = if fault.cell_line > 0 {
        format!(" at line {}", ran.line + fault.cell_line)
    } else {
        String::new()
    };
    let who = ran.role.describe(ran.line);
    if fault.message.starts_with("error returned with `?`") {
        format!("{who} stopped with an {}", fault.message)
    } else if fault.thread == "main" || fault.thread == "<unnamed>" {
        format!("{who} panicked{place}: {}", fault.message)
    } else {
        format!(
            "{who}: thread '{}' panicked{place}: {}",
            fault.thread, fault.message
        )
    }
}

/// One verdict for the exercise, from what each cell did. The first cause
/// wins over its consequences: a server that does not compile is the
/// verdict, not the client that then had nobody to talk to.
fn judge(
    ex: &Exercise,
    server: &Ran,
    clients: &[Ran],
    j: Judgement<'_>,
) -> (Verdict, Option<Failure>) {
    let all: Vec<&Ran> = std::iter::once(server).chain(clients).collect();

    let diagnostics: Vec<_> = all
        .iter()
        .filter_map(|r| match &r.eval {
            Err(EvalError::Compile(d)) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    if let Some(r) = all.iter().find(|r| {
        matches!(
            r.eval,
            Err(EvalError::Compile(_)) | Err(EvalError::Other(_))
        )
    }) {
        let message = match &r.eval {
            Err(EvalError::Other(msg)) => format!("{}: {msg}", r.role.describe(r.line)),
            _ => format!("{} does not compile", r.role.describe(r.line)),
        };
        return (
            Verdict::CompileError,
            Some(Failure {
                message,
                diagnostics,
                ..Default::default()
            }),
        );
    }

    if let Some(r) = all.iter().find(|r| r.stopped == Some(Stop::Flood)) {
        return (
            Verdict::OutputLimit,
            failure(format!(
                "{} wrote more than {} bytes to stdout ({} bytes by the time it was stopped); \
                 the output cap is {} bytes",
                r.role.describe(r.line),
                j.output_cap,
                r.stdout.bytes,
                j.output_cap
            )),
        );
    }

    // A panic or crash before the deadline is the cause of what follows it.
    let fault_of = |r: &Ran| -> Option<(Verdict, Option<Failure>)> {
        if let Some(f) = r.faults.first() {
            return Some((Verdict::Panic, with_stderr(failure(fault_message(r, f)), r)));
        }
        if let Some(f) = r.replay_faults.first().filter(|_| !r.started) {
            return Some((
                Verdict::Panic,
                failure(format!(
                    "a plain cell above {} panicked when it ran again before it: {}",
                    r.role.describe(r.line),
                    f.message
                )),
            ));
        }
        if let Err(EvalError::Terminated(msg)) = &r.eval
            && r.stopped.is_none()
        {
            let status = msg.lines().last().unwrap_or("").trim();
            let status = status
                .strip_prefix("Subprocess terminated with status: ")
                .unwrap_or(status);
            return Some((
                Verdict::Crashed,
                with_stderr(
                    failure(format!("{} died: {status}", r.role.describe(r.line))),
                    r,
                ),
            ));
        }
        None
    };
    if !j.bound {
        if let Some(v) = fault_of(server) {
            return v;
        }
        let message = if j.timed_out && server.started {
            format!(
                "the server did not bind port {} within {} s",
                j.port,
                j.timeout.as_secs_f64()
            )
        } else if j.timed_out {
            "the server did not start running within the compile limit".to_owned()
        } else {
            format!("the server ended without binding port {}", j.port)
        };
        return (Verdict::NotListening, with_stderr(failure(message), server));
    }
    if let Some(v) = all.iter().find_map(|r| fault_of(r)) {
        return v;
    }
    if j.timed_out {
        let still: Vec<String> = all
            .iter()
            .filter(|r| r.stopped == Some(Stop::Deadline))
            .map(|r| r.role.describe(r.line))
            .collect();
        let who = match still.len() {
            0 => "the exercise was".to_owned(),
            1 => format!("{} was", still[0]),
            _ => format!("{} were", still.join(" and ")),
        };
        return (
            Verdict::Timeout,
            failure(format!(
                "{who} still running after {} s and stopped",
                j.timeout.as_secs_f64()
            )),
        );
    }
    if clients.len() < ex.clients.len() {
        return (
            Verdict::Timeout,
            failure("the exercise was stopped before all its clients ran".to_owned()),
        );
    }

    let placeholders = Placeholders {
        host: j.host,
        port: Some(j.port),
    };
    let mut diffs = Vec::new();
    let mut who = Vec::new();
    for r in clients.iter().chain(std::iter::once(server)) {
        if let Some(expected) = &r.expected
            && let Some(diff) = compare(expected, &r.stdout.text, placeholders)
        {
            who.push(r.role.describe(r.line));
            diffs.push(diff);
        }
    }
    if !diffs.is_empty() {
        let mut message = format!(
            "the output of {} differs from the expected output",
            who.join(" and ")
        );
        if j.server_kept_running && who.iter().any(|w| w.starts_with("the server")) {
            message.push_str(" (the server did not end by itself and was stopped)");
        }
        return (
            Verdict::Mismatch,
            Some(Failure {
                message,
                diff: Some(diffs.concat()),
                ..Default::default()
            }),
        );
    }
    (Verdict::Pass, None)
}
