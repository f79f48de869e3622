//! One exercise: a server and its clients, running at once on a free port.
//!
//! The server and the first client compile side by side; the client's code
//! waits at a gate until the server has bound `PORT`, so compiling never
//! waits for listening, only running does. One loop here watches everything
//! (bind, deadline, output sizes) and does all the killing.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::capture::Capture;
use super::kernel::{EvalError, Kernel, Killer};
use super::native::Natives;
use super::peer;
use super::plain::push_cell;
use super::source::{CodeLine, SourceMap};
use super::{Cancel, Engine, ports, runtime};
use crate::lesson::{Exercise, Lang, Lesson};
use crate::observation::{CellObservation, Ending, ExerciseObservation, Stop};
use crate::plan::Replay;

const POLL: Duration = Duration::from_millis(5);

/// Set to an exercise ID, makes evcxr's evaluation thread of that
/// exercise's server panic: how tests check that a panic inside evcxr is
/// that exercise's `crashed` verdict and nothing more.
pub const PANIC_INJECTION_ENV: &str = "AULA_TEST_PANIC_IN_EXERCISE";

/// How a cell runs: evaluated by evcxr on a thread of its own with its
/// context, or a reference's half compiled beforehand, as a process.
enum Exec {
    Evcxr {
        killer: Killer,
        thread: Option<JoinHandle<(Kernel, Result<(), EvalError>)>>,
    },
    Native {
        child: std::sync::Mutex<std::process::Child>,
        status: std::sync::Mutex<Option<std::process::ExitStatus>>,
        /// The pids group of a confined peer: what it started, wherever.
        group: Option<std::sync::Arc<super::confine::Group>>,
    },
}

/// Stops every cell of `cells` that is still running, for `why`: all are
/// marked before any is killed, so that a client whose server dies first
/// (a reset, an end of file) is not seen to end by itself meanwhile.
fn stop_together(cells: &mut [&mut Running], why: Stop) {
    let marked: Vec<bool> = cells.iter_mut().map(|c| c.mark_stopped(why)).collect();
    for (cell, marked) in cells.iter().zip(marked) {
        if marked {
            cell.kill();
        }
    }
}

/// A running cell. Dropped before it ends, it kills the cell's process group.
struct Running {
    cell: usize,
    capture: Capture,
    exec: Exec,
    stopped: Option<Stop>,
    begun: Instant,
}

impl Running {
    fn start(
        mut kernel: Kernel,
        cell: usize,
        capture: Capture,
        map: SourceMap,
        panic: bool,
    ) -> Running {
        let killer = kernel.killer();
        let thread = std::thread::spawn(move || {
            if panic {
                // Killed first, so the context's child does not outlive the
                // kernel lost with this thread.
                kernel.killer().kill();
                panic!("injected by {PANIC_INJECTION_ENV}");
            }
            let r = kernel.eval(map);
            (kernel, r)
        });
        Running {
            cell,
            capture,
            exec: Exec::Evcxr {
                killer,
                thread: Some(thread),
            },
            stopped: None,
            begun: Instant::now(),
        }
    }

    /// Starts a compiled half, or a Python peer, in the lane's namespace,
    /// in a process group of its own, ended by the kernel if the thread that
    /// started it dies. `group`: the pids group it joins before it runs.
    fn start_process(
        mut command: std::process::Command,
        cell: usize,
        capture: Capture,
        limits: super::sandbox::Limits,
        netns: Option<&super::netns::Netns>,
        group: Option<std::sync::Arc<super::confine::Group>>,
    ) -> Result<Running> {
        use std::os::unix::process::CommandExt as _;
        command
            .current_dir(capture.dir())
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        limits.apply_to(&mut command);
        let joins = group.clone();
        // SAFETY: one prctl(2) and one write(2): async-signal-safe, nothing
        // allocated.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                if let Some(group) = &joins {
                    super::confine::join_in_child(group)?;
                }
                Ok(())
            });
        }
        if let Some(ns) = netns {
            ns.enter_in(&mut command)?;
        }
        let child = command.spawn()?;
        Ok(Running {
            cell,
            capture,
            exec: Exec::Native {
                child: std::sync::Mutex::new(child),
                status: std::sync::Mutex::new(None),
                group,
            },
            stopped: None,
            begun: Instant::now(),
        })
    }

    fn is_finished(&self) -> bool {
        match &self.exec {
            Exec::Evcxr { thread, .. } => thread.as_ref().is_none_or(|t| t.is_finished()),
            Exec::Native { child, status, .. } => {
                let mut status = status.lock().unwrap_or_else(|e| e.into_inner());
                if status.is_none() {
                    let mut child = child.lock().unwrap_or_else(|e| e.into_inner());
                    *status = child.try_wait().ok().flatten();
                }
                status.is_some()
            }
        }
    }

    /// Whether the cell's code is still being compiled: evaluated by evcxr,
    /// and neither running nor waiting at its gate.
    fn compiling(&self) -> bool {
        matches!(self.exec, Exec::Evcxr { .. })
            && !self.is_finished()
            && !self.capture.started()
            && !self.capture.waiting()
    }

    fn kill(&self) {
        match &self.exec {
            Exec::Evcxr { killer, .. } => killer.kill(),
            Exec::Native { child, group, .. } => {
                let pid = child.lock().unwrap_or_else(|e| e.into_inner()).id() as i32;
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                if let Some(group) = group {
                    group.signal_all();
                }
            }
        }
    }

    fn stop(&mut self, why: Stop) {
        if self.mark_stopped(why) {
            self.kill();
        }
    }

    /// Says the cell was stopped for `why`, if it is still running, without
    /// killing it yet: see [`stop_together`].
    fn mark_stopped(&mut self, why: Stop) -> bool {
        let running = self.stopped.is_none() && !self.is_finished();
        if running {
            self.stopped = Some(why);
        }
        running
    }

    /// Stops the cell and its compiler too: evcxr waits for cargo in the
    /// host, so a cell stopped while compiling ends only when its compiler
    /// does. For the compile limit, and for a run that is cancelled.
    fn stop_compiling(&mut self, why: Stop) {
        let compiling = self.compiling();
        self.stop(why);
        if compiling && let Exec::Evcxr { killer, .. } = &self.exec {
            killer.kill_compiler();
        }
    }

    /// Waits for the cell to end: the caller has made sure it does (it
    /// finished, or it was killed). The kernel is lost when evcxr panicked;
    /// the panic is the cell's ending. A compiled half has no kernel.
    fn join(mut self, cap: usize) -> (Option<Kernel>, CellObservation) {
        let (kernel, ending) = match &mut self.exec {
            Exec::Evcxr { thread, .. } => match thread.take().expect("joined once").join() {
                Ok((kernel, Ok(()))) => (Some(kernel), Ending::Returned),
                Ok((kernel, Err(e))) => (Some(kernel), e.into_ending()),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    (
                        None,
                        Ending::RunnerFailed(format!("evcxr panicked: {what}")),
                    )
                }
            },
            Exec::Native {
                child,
                status,
                group,
            } => {
                let known = *status.get_mut().unwrap_or_else(|e| e.into_inner());
                let status = known.or_else(|| {
                    child
                        .get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .wait()
                        .ok()
                });
                // A panic unwinds out of `main` (status 101) after the
                // runtime recorded it: like a cell whose eval returned.
                let panicked =
                    status.and_then(|s| s.code()) == Some(101) && !self.capture.faults().is_empty();
                let ending = match status {
                    Some(s) if s.success() || panicked => Ending::Returned,
                    Some(s) => Ending::Died(s.to_string()),
                    None => Ending::RunnerFailed("lost the cell's process".to_owned()),
                };
                // What a peer left running (a daemon of its own session)
                // ends with it.
                if let Some(group) = group {
                    group.kill_all(0);
                }
                (None, ending)
            }
        };
        let stdout = self.capture.stdout(cap);
        let observation = CellObservation {
            cell: self.cell,
            ending,
            stopped: self.stopped,
            started: self.capture.started(),
            stdout: stdout.text,
            stdout_bytes: stdout.bytes,
            stderr: self.capture.stderr(64 * 1024).text,
            faults: self.capture.faults(),
            replay_faults: self.capture.replay_faults(),
            duration: self.begun.elapsed(),
        };
        (kernel, observation)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.is_finished() {
            self.kill();
        }
        if let Exec::Native { child, .. } = &self.exec {
            // Reaped, so it does not linger as a zombie.
            let _ = child.lock().unwrap_or_else(|e| e.into_inner()).try_wait();
        }
    }
}

/// The code evaluated for an exercise cell: the plain cells above it again
/// (their output discarded), then the cell wrapped by the runtime.
fn cell_code(
    lesson: &Lesson,
    replayable: &[Replay],
    index: usize,
    capture: &Capture,
    gate: bool,
    host: &str,
    port: u16,
) -> SourceMap {
    let cell = lesson.cell(index);
    let mut map = SourceMap::new();
    map.push(&runtime::exercise_open(&capture.dir_str()), None);
    // Cells are in the lesson's order, so "above" is a lower index: true
    // also of a student's cell spliced into a reference, whose lines are
    // another file's.
    for r in replayable.iter().filter(|r| r.index < index) {
        push_cell(&mut map, lesson.cell(r.index), r.index, r.wrapped);
    }
    map.push(
        &runtime::exercise_prefix(&capture.dir_str(), gate, host, port),
        None,
    )
    .push(
        &cell.code,
        Some(CodeLine {
            cell: index,
            line: 1,
        }),
    )
    .push(runtime::EXERCISE_SUFFIX, None);
    map
}

/// How many times an exercise is run again on a new port when its server
/// could not bind because something outside aula took the port meanwhile.
const PORT_TRIES: usize = 3;

/// Runs an exercise; `None` when the run was cancelled.
pub fn run(
    engine: &Engine,
    lane: usize,
    lesson: &Lesson,
    ex: &Exercise,
    replayable: &[Replay],
    natives: &Natives,
    cancel: &Cancel,
) -> Result<Option<ExerciseObservation>> {
    for attempt_no in 1..=PORT_TRIES {
        let lease = ports::allocate()?;
        // Under --trace, clients get the relay's port and the server its own.
        let server_lease = match engine.options.trace {
            true => Some(ports::allocate()?),
            false => None,
        };
        let ports = (
            lease.port,
            server_lease.as_ref().map_or(lease.port, |l| l.port),
        );
        let Some(obs) = attempt(
            engine,
            lane,
            lesson,
            ex,
            (replayable, natives),
            ports,
            cancel,
        )?
        else {
            return Ok(None);
        };
        if attempt_no == PORT_TRIES || !port_was_taken(&obs.server) || obs.bound {
            return Ok(Some(obs));
        }
    }
    unreachable!("the last try returns")
}

/// Whether the server failed because its port was taken: not the student's
/// fault when aula handed the port out as free. std's `io::Error` says
/// `AddrInUse` (its kind) or "Address already in use" (the OS's words).
fn port_was_taken(server: &CellObservation) -> bool {
    let says = |t: &str| t.contains("Address already in use") || t.contains("AddrInUse");
    server.faults.iter().any(|f| says(&f.message)) || says(&server.stderr)
}

/// One run of the exercise on `port`. `None` when cancelled.
fn attempt(
    engine: &Engine,
    lane: usize,
    lesson: &Lesson,
    ex: &Exercise,
    (replayable, natives): (&[Replay], &Natives),
    (port, server_port): (u16, u16),
    cancel: &Cancel,
) -> Result<Option<ExerciseObservation>> {
    let opts = &engine.options;
    let lane = engine.lane(lane);
    let mut relay = match server_port != port {
        true => Some(super::relay::Relay::start(
            port,
            server_port,
            &engine.native_capture_dir(&format!("{}-relay", ex.id)),
            lane.netns.as_deref(),
        )?),
        false => None,
    };
    let host = opts.host.clone();
    let inject = std::env::var(PANIC_INJECTION_ENV).is_ok_and(|id| id == ex.id);

    let name = |index: usize| {
        if index == ex.server {
            format!("{}-server", ex.id)
        } else {
            format!("{}-client", ex.id)
        }
    };
    let port_of = |index: usize| {
        if index == ex.server {
            server_port
        } else {
            port
        }
    };
    let start_cell = |kernel, index: usize, gate, panic| -> Result<Running> {
        let port = port_of(index);
        let capture = engine.new_capture(&kernel, &name(index))?;
        let map = cell_code(lesson, replayable, index, &capture, gate, &host, port);
        Ok(Running::start(kernel, index, capture, map, panic))
    };
    // A reference's compiled half where there is one; otherwise a context,
    // the spare one (reset) when there is one.
    let start =
        |index: usize, gate: bool, panic: bool, spare: &mut Option<Kernel>| -> Result<Running> {
            let netns = lane.netns.as_deref();
            if lesson.cell(index).lang == Lang::Python {
                let (capture, confine, procs) = engine.confined_capture(&name(index))?;
                let command = peer::python_command(
                    &lesson.cell(index).code,
                    capture.dir(),
                    (&host, port_of(index), gate),
                    confine.as_deref(),
                )?;
                return Running::start_process(command, index, capture, opts.limits, netns, procs);
            }
            if let Some(bin) = natives.get(index).filter(|_| !panic) {
                let capture = Capture::create(engine.native_capture_dir(&name(index)))?;
                let mut command = std::process::Command::new(bin);
                command
                    .arg(capture.dir_str())
                    .arg(&host)
                    .arg(port_of(index).to_string())
                    .arg(if gate { "1" } else { "0" });
                return Running::start_process(command, index, capture, opts.limits, netns, None);
            }
            let kernel = match spare.take() {
                Some(mut k) => {
                    k.reset()?;
                    k
                }
                None => lane.pool.take()?,
            };
            start_cell(kernel, index, gate, panic)
        };

    let mut spare: Option<Kernel> = None;
    let mut server = start(ex.server, false, inject, &mut spare)?;
    let mut client = Some(start(ex.clients[0], true, false, &mut spare)?);
    let mut next_client = 1;
    let mut clients: Vec<CellObservation> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut bound = false;
    let mut timed_out = false;
    // A later client's compile does not count against the exercise's clock.
    let mut client_compiling = false;
    let compile_limit = opts.compile_limit;

    // Every pass either waits POLL or ends the loop; each branch that ends it
    // is reached by the deadline at the latest.
    let mut cancelled = false;
    loop {
        let now = Instant::now();
        if cancel.is_cancelled() {
            cancelled = true;
            server.stop_compiling(Stop::Cleanup);
            if let Some(c) = client.as_mut() {
                c.stop_compiling(Stop::Cleanup);
            }
        }
        if deadline.is_none() && server.capture.started() {
            deadline = Some(now + ex.timeout);
        }
        if client_compiling
            && let Some(c) = &client
            && c.capture.started()
        {
            client_compiling = false;
            if let Some(d) = deadline.as_mut() {
                *d += c.begun.elapsed();
            }
        }
        // A server binds from its cell's code on, never while it compiles.
        if !bound && server.capture.started() && lane.tables.is_bound(server_port) {
            bound = true;
            if let Some(r) = relay.as_mut() {
                r.listen()?;
            }
            if let Some(c) = &client {
                c.capture.open_gate();
            }
        }
        for r in std::iter::once(&mut server).chain(client.as_mut()) {
            if r.capture.stdout_bytes() > opts.output_cap as u64 {
                r.stop(Stop::Flood);
            }
        }
        // A cell still compiling at the compile limit: its compiler is
        // stopped, and the cell says so.
        for r in std::iter::once(&mut server).chain(client.as_mut()) {
            if r.compiling() && r.begun + compile_limit < now {
                timed_out = true;
                r.stop_compiling(Stop::CompileDeadline);
            }
        }
        if deadline.is_some_and(|d| now > d && !client_compiling) {
            timed_out = true;
            let mut both: Vec<&mut Running> = std::iter::once(&mut server)
                .chain(client.as_mut())
                .collect();
            stop_together(&mut both, Stop::Deadline);
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
            let in_context = matches!(c.exec, Exec::Evcxr { .. });
            let (kernel, observed) = c.join(opts.output_cap);
            let fatal = matches!(
                observed.ending,
                Ending::DoesNotCompile(_) | Ending::RunnerFailed(_)
            ) || observed.stopped.is_some()
                || !bound
                || cancelled;
            clients.push(observed);
            let last = next_client == ex.clients.len();
            let lost = kernel.is_none() && in_context;
            if let Some(k) = kernel {
                spare = Some(k);
            }
            if fatal || timed_out || last || lost {
                break;
            }
            // Each client in a context of its own: a fresh child, so
            // nothing the previous client left running remains.
            client = Some(start(ex.clients[next_client], false, false, &mut spare)?);
            client_compiling = true;
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
    let (server_kernel, server_observed) = server.join(opts.output_cap);
    for k in server_kernel.into_iter().chain(spare) {
        // Nothing the exercise started outlives it (a process that left its
        // cell's group included), so nothing of one student's code meets
        // the next check: ended now, not when the context is reset.
        k.killer().kill_all();
        lane.pool.give_back(k);
    }
    if cancelled {
        return Ok(None);
    }
    clients.extend(
        ex.clients[clients.len()..]
            .iter()
            .map(|&i| CellObservation::not_run(i)),
    );
    Ok(Some(ExerciseObservation {
        server: server_observed,
        clients,
        bound,
        timed_out,
        server_kept_running,
        port,
        host,
        server_port: relay.is_some().then_some(server_port),
        wire: relay.map(super::relay::Relay::finish),
    }))
}
