//! One exercise: a server and its clients, running at once on a free port.
//!
//! The server and the first client compile side by side; the client's code
//! waits at a gate until the server has bound `PORT`, so compiling never
//! waits for listening, only running does. One loop here watches everything
//! (bind, deadline, output sizes) and does all the killing: an
//! [`ExerciseRun`] whose methods are its steps (start, a look, a client's
//! end, the wind-down).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::evcxr::capture::Capture;
use super::evcxr::kernel::{EvalError, Kernel, Killer};
use super::evcxr::plain::push_cell;
use super::evcxr::runtime;
use super::evcxr::source::{CodeLine, SourceMap};
use super::native::Natives;
use super::peer;
use super::{Cancel, Engine, ports};
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
        group: Option<std::sync::Arc<super::sandbox::confine::Group>>,
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
    /// How many faults the cell had recorded when it was marked stopped:
    /// those after are the stop's doing (see [`Running::mark_stopped`]).
    faults_at_stop: Option<usize>,
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
            faults_at_stop: None,
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
        netns: Option<&super::net::netns::Netns>,
        group: Option<std::sync::Arc<super::sandbox::confine::Group>>,
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
                    super::sandbox::confine::join_in_child(group)?;
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
            faults_at_stop: None,
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

    /// The processes the cell runs as now (see [`super::net::idle`]).
    fn processes(&self) -> Vec<i32> {
        match &self.exec {
            Exec::Evcxr { killer, .. } => killer.processes(),
            Exec::Native { child, group, .. } => {
                let pid = child.lock().unwrap_or_else(|e| e.into_inner()).id() as i32;
                super::net::idle::processes_of(pid, group.as_deref())
            }
        }
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
    ///
    /// A fault the cell records from here on is what the stopping did to
    /// it, not its own: a client whose server is killed first at the
    /// deadline gets a reset, and under load can record it before its own
    /// kill lands. Only the faults recorded before are kept.
    fn mark_stopped(&mut self, why: Stop) -> bool {
        let running = self.stopped.is_none() && !self.is_finished();
        if running {
            self.stopped = Some(why);
            self.faults_at_stop = Some(self.capture.faults().len());
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
        let mut faults = self.capture.faults();
        faults.truncate(self.faults_at_stop.unwrap_or(usize::MAX));
        let observation = CellObservation {
            cell: self.cell,
            ending,
            stopped: self.stopped,
            started: self.capture.started(),
            stdout: stdout.text,
            stdout_bytes: stdout.bytes,
            stderr: self.capture.stderr(64 * 1024).text,
            faults,
            replay_faults: self.capture.replay_faults(),
            duration: self.begun.elapsed(),
            port: None,
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

/// How long a server must be seen only waiting, with nothing written
/// meanwhile, before it is stopped early: long enough that a thread between
/// two calls (back from `accept`, about to print) is seen doing so.
const IDLE_SETTLE: Duration = Duration::from_millis(15);

/// Gives the server its grace time to end by itself. A server seen only
/// waiting for a new client on its port (`tables`, when it bound one) twice,
/// [`IDLE_SETTLE`] apart, is not waited for: LESSON-FORMAT 1.2 makes the
/// grace a most. The caller then stops it, as after the whole grace.
fn wait_for_end_or_idle(server: &Running, tables: Option<(&ports::Tables, u16)>, grace: Duration) {
    let grace_end = Instant::now() + grace;
    // When the server was first seen waiting, and what it had written then.
    let mut waiting: Option<(Instant, u64)> = None;
    while !server.is_finished() && Instant::now() < grace_end {
        if let Some((tables, port)) = tables {
            let written = server.capture.stdout_bytes();
            if super::net::idle::only_waiting(&server.processes(), tables, port) {
                match waiting {
                    Some((since, then)) if then == written => {
                        if since.elapsed() >= IDLE_SETTLE {
                            return;
                        }
                    }
                    _ => waiting = Some((Instant::now(), written)),
                }
            } else {
                waiting = None;
            }
        }
        std::thread::sleep(POLL);
    }
}

/// How many times an exercise is run again on a new port when its server
/// could not bind because something outside aula took the port meanwhile:
/// the server never bound it, and once the server's processes are gone the
/// kernel's socket tables still show it bound. (What the student's code
/// printed about it is no evidence: a server may bind its port twice.)
const PORT_TRIES: usize = 3;

/// The ports of one run of an exercise: what each cell is given.
struct Ports {
    /// What the clients without faults are given: `PORT` in reports.
    port: u16,
    /// The server's: `port` itself, unless a relay stands between.
    server: u16,
    /// Each client's, by position.
    clients: Vec<u16>,
    /// The relay's routes, when one stands between clients and server:
    /// under `--trace`, or for a client with faults on the wire.
    routes: Vec<super::net::relay::Route>,
    /// Held until the run ends, so no other run is handed these ports.
    _leases: Vec<ports::Lease>,
}

impl Ports {
    fn allocate(lesson: &Lesson, ex: &Exercise, trace: bool) -> Result<Ports> {
        use super::net::relay::Route;
        let lease = ports::allocate()?;
        let port = lease.port;
        let mut leases = vec![lease];
        let faulted = ex
            .clients
            .iter()
            .any(|&c| !lesson.cell(c).wire().is_empty());
        if !trace && !faulted {
            return Ok(Ports {
                port,
                server: port,
                clients: vec![port; ex.clients.len()],
                routes: Vec::new(),
                _leases: leases,
            });
        }
        let server = ports::allocate()?;
        let mut routes = vec![Route {
            listen: port,
            faults: Vec::new(),
        }];
        let mut clients = Vec::new();
        for &c in &ex.clients {
            let wire = lesson.cell(c).wire();
            if wire.is_empty() {
                clients.push(port);
                continue;
            }
            let own = ports::allocate()?;
            routes.push(Route {
                listen: own.port,
                faults: wire.to_vec(),
            });
            clients.push(own.port);
            leases.push(own);
        }
        let server_port = server.port;
        leases.push(server);
        Ok(Ports {
            port,
            server: server_port,
            clients,
            routes,
            _leases: leases,
        })
    }

    /// The port the cell at `index` of the lesson is given.
    fn of(&self, ex: &Exercise, index: usize) -> u16 {
        match ex.clients.iter().position(|&c| c == index) {
            Some(pos) => self.clients[pos],
            None => self.server,
        }
    }
}

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
    let crates = engine
        .crates(&lesson.crates_of(ex))
        .map_err(|e| anyhow::anyhow!("the lesson's crates could not be built:\n{e}"))?;
    for attempt_no in 1..=PORT_TRIES {
        let ports = Ports::allocate(lesson, ex, engine.options.trace)?;
        let setting = Setting {
            engine,
            lane: engine.lane(lane),
            lesson,
            ex,
            replayable,
            natives,
            ports: &ports,
            crates: crates.clone(),
        };
        let Some(obs) = attempt(&setting, cancel)? else {
            return Ok(None);
        };
        let taken = !obs.bound && setting.lane.tables.is_bound(ports.server);
        if attempt_no == PORT_TRIES || !taken {
            return Ok(Some(obs));
        }
    }
    unreachable!("the last try returns")
}

/// What one run of an exercise is made of, and how its cells start.
struct Setting<'a> {
    engine: &'a Engine,
    lane: &'a super::Lane,
    lesson: &'a Lesson,
    ex: &'a Exercise,
    replayable: &'a [Replay],
    natives: &'a Natives,
    ports: &'a Ports,
    /// The crates its cells link (the lesson's `:dep` lines above it).
    crates: Option<std::sync::Arc<super::crates::Built>>,
}

impl Setting<'_> {
    fn name(&self, index: usize) -> String {
        match index == self.ex.server {
            true => format!("{}-server", self.ex.id),
            false => format!("{}-client", self.ex.id),
        }
    }

    /// A name for the cell at `index` that is the same on every run of
    /// this exercise, whatever the student edits: the context that
    /// compiled it last is given it again (see [`super::evcxr::pool::Pool::take_for`]).
    fn cell_key(&self, index: usize) -> String {
        let role = match self.ex.clients.iter().position(|&c| c == index) {
            Some(pos) => format!("client {pos}"),
            None => "server".to_owned(),
        };
        format!("{}\0{}\0{role}", self.lesson.path.display(), self.ex.id)
    }

    /// Starts the cell at `index`: a Python peer, a reference's compiled
    /// half where there is one, or else in a context (the spare one, reset,
    /// when there is one). `gate`: it waits until told to go.
    fn start_cell(
        &self,
        index: usize,
        gate: bool,
        panic: bool,
        spare: &mut Vec<Kernel>,
    ) -> Result<Running> {
        let (engine, opts) = (self.engine, &self.engine.options);
        let netns = self.lane.netns.as_deref();
        let port = self.ports.of(self.ex, index);
        let host = &opts.host;
        if self.lesson.cell(index).lang == Lang::Python {
            let (capture, confine, procs) = engine.confined_capture(&self.name(index))?;
            let command = peer::python_command(
                &self.lesson.cell(index).code,
                capture.dir(),
                (host, port, gate),
                confine.as_deref(),
            )?;
            return Running::start_process(command, index, capture, opts.limits, netns, procs);
        }
        if let Some(bin) = self.natives.get(index).filter(|_| !panic) {
            let capture = Capture::create(engine.native_capture_dir(&self.name(index)))?;
            let mut command = std::process::Command::new(bin);
            command
                .arg(capture.dir_str())
                .arg(host)
                .arg(port.to_string())
                .arg(if gate { "1" } else { "0" });
            return Running::start_process(command, index, capture, opts.limits, netns, None);
        }
        let key = self.cell_key(index);
        let mut kernel = match spare.pop() {
            Some(mut k) => {
                k.reset()?;
                // It compiles this cell now: the next run should find it so.
                k.compiles(Some(&key));
                k
            }
            None => self.lane.pool.take_for(Some(&key))?,
        };
        kernel.link_crates(self.crates.clone());
        let capture = engine.new_capture(&kernel, &self.name(index))?;
        let map = cell_code(
            self.lesson,
            self.replayable,
            index,
            &capture,
            gate,
            host,
            port,
        );
        Ok(Running::start(kernel, index, capture, map, panic))
    }
}

/// The clients of a run: which are running, which have ended, and when the
/// next may start. Sequential exercises run one client at a time; a
/// `concurrent` one starts them all, and opens their gates together.
struct Clients {
    running: Vec<(usize, Running)>,
    ended: Vec<Option<CellObservation>>,
    next: usize,
    /// Some client cannot be judged: the others are stopped, none started.
    fatal: bool,
    /// The gates are open (concurrent), or the first one is (sequential).
    gates_open: bool,
    /// A later client's compile, which does not count against the clock.
    compiling: bool,
}

impl Clients {
    fn all(&mut self) -> impl Iterator<Item = &mut Running> {
        self.running.iter_mut().map(|(_, r)| r)
    }

    fn done(&self) -> bool {
        self.running.is_empty() && (self.fatal || self.next == self.ended.len())
    }
}

/// One run of the exercise on its ports. `None` when cancelled.
fn attempt(setting: &Setting, cancel: &Cancel) -> Result<Option<ExerciseObservation>> {
    let mut run = ExerciseRun::start(setting)?;
    // Every pass either waits POLL or ends the loop; each branch that ends it
    // is reached by the deadline at the latest.
    while !run.clients.done() {
        run.tick(cancel)?;
        // The last client's end is not followed by a wait: the verdict
        // waits for nothing but the server now.
        if run.client_finished()? || run.clients.done() {
            continue;
        }
        std::thread::sleep(POLL);
    }
    Ok(run.wind_down())
}

/// One run of an exercise on its ports, step by step: [`ExerciseRun::start`]
/// starts its cells, [`ExerciseRun::tick`] is one look at them (and does
/// all the stopping), [`ExerciseRun::client_finished`] joins the clients
/// that ended, and [`ExerciseRun::wind_down`] ends the server and says what
/// the run saw. Dropped early (an error), it kills what still runs.
struct ExerciseRun<'s, 'a> {
    // Dropped in this order, as when they were one function's locals: the
    // clients, the server, the spare contexts, the relay.
    clients: Clients,
    server: Running,
    /// Contexts of clients that ended, reset and used again for the next.
    spare: Vec<Kernel>,
    relay: Option<super::net::relay::Relay>,
    setting: &'s Setting<'a>,
    /// When the exercise's time is up: set once the server's code starts.
    deadline: Option<Instant>,
    /// The server was seen bound to its port.
    bound: bool,
    /// A cell was stopped by the deadline or the compile limit.
    timed_out: bool,
    /// The run was cancelled: nothing it saw is said.
    cancelled: bool,
}

impl<'s, 'a> ExerciseRun<'s, 'a> {
    /// Starts the relay (where one stands between), the server, and the
    /// first client, or all of them: they compile beside the server and
    /// wait at their gates.
    fn start(setting: &'s Setting<'a>) -> Result<ExerciseRun<'s, 'a>> {
        let Setting {
            engine, lane, ex, ..
        } = *setting;
        let ports = setting.ports;
        let relay = match ports.routes.is_empty() {
            false => Some(super::net::relay::Relay::start(
                ports.routes.clone(),
                ports.server,
                &engine.native_capture_dir(&format!("{}-relay", ex.id)),
                lane.netns.as_deref(),
            )?),
            true => None,
        };
        let inject = std::env::var(PANIC_INJECTION_ENV).is_ok_and(|id| id == ex.id);

        let mut spare: Vec<Kernel> = Vec::new();
        let server = setting.start_cell(ex.server, false, inject, &mut spare)?;
        let mut run = ExerciseRun {
            clients: Clients {
                running: Vec::new(),
                ended: vec![None; ex.clients.len()],
                next: 0,
                fatal: false,
                gates_open: false,
                compiling: false,
            },
            server,
            spare,
            relay,
            setting,
            deadline: None,
            bound: false,
            timed_out: false,
            cancelled: false,
        };
        let first = if ex.concurrent { ex.clients.len() } else { 1 };
        while run.clients.next < first {
            let index = ex.clients[run.clients.next];
            let r = setting.start_cell(index, true, false, &mut run.spare)?;
            run.clients.running.push((run.clients.next, r));
            run.clients.next += 1;
        }
        Ok(run)
    }

    /// One look at everything running: cancellation, the server binding (the
    /// gates open), output sizes, the compile limit and the deadline. Does all
    /// the stopping.
    fn tick(&mut self, cancel: &Cancel) -> Result<()> {
        let (ex, opts) = (self.setting.ex, &self.setting.engine.options);
        let now = Instant::now();
        if cancel.is_cancelled() {
            self.cancelled = true;
            self.server.stop_compiling(Stop::Cleanup);
            self.clients
                .all()
                .for_each(|c| c.stop_compiling(Stop::Cleanup));
        }
        if self.deadline.is_none() && self.server.capture.started() {
            self.deadline = Some(now + ex.timeout);
        }
        // A later client's compile does not count against the exercise's clock.
        if self.clients.compiling
            && let Some((_, c)) = self.clients.running.first()
            && c.capture.started()
        {
            self.clients.compiling = false;
            if let Some(d) = self.deadline.as_mut() {
                *d += c.begun.elapsed();
            }
        }
        // A server binds from its cell's code on, never while it compiles;
        // a socket another program took the port with is not its bind.
        if !self.bound
            && self.server.capture.started()
            && self
                .setting
                .lane
                .tables
                .bound_by(self.setting.ports.server, || self.server.processes())
        {
            self.bound = true;
            if let Some(r) = self.relay.as_mut() {
                r.listen()?;
            }
        }
        self.open_gates();
        for r in std::iter::once(&mut self.server).chain(self.clients.all()) {
            if r.capture.stdout_bytes() > opts.output_cap as u64 {
                r.stop(Stop::Flood);
            }
            // A cell still compiling at the compile limit: its compiler is
            // stopped, and the cell says so.
            if r.compiling() && r.begun + opts.compile_limit < now {
                self.timed_out = true;
                r.stop_compiling(Stop::CompileDeadline);
            }
        }
        // Clients of a concurrent exercise still compiling, with the server
        // ready, are bounded by the compile limit, not the exercise's clock.
        let compiling =
            self.clients.compiling || (ex.concurrent && self.bound && !self.clients.gates_open);
        if self.deadline.is_some_and(|d| now > d && !compiling) {
            self.timed_out = true;
            let mut all: Vec<&mut Running> = std::iter::once(&mut self.server)
                .chain(self.clients.all())
                .collect();
            stop_together(&mut all, Stop::Deadline);
        } else if self.server.is_finished() && !self.bound {
            // The server ended before any client could use it, or never started.
            self.clients.all().for_each(|c| c.stop(Stop::Cleanup));
        }
        Ok(())
    }

    /// Once the server is bound, the clients waiting at their gates go: the
    /// one of a sequential exercise at once; those of a concurrent one
    /// together, once every one of them has compiled (or failed to), with the
    /// exercise's whole time from then on.
    fn open_gates(&mut self) {
        let ex = self.setting.ex;
        let clients = &mut self.clients;
        if !self.bound || clients.gates_open {
            return;
        }
        let ready = |c: &Running| c.capture.waiting() || c.is_finished();
        if ex.concurrent && !clients.running.iter().all(|(_, c)| ready(c)) {
            return;
        }
        clients.gates_open = true;
        for (_, c) in &clients.running {
            c.capture.open_gate();
        }
        if ex.concurrent {
            let full = Instant::now() + ex.timeout;
            self.deadline = Some(self.deadline.map_or(full, |d| d.max(full)));
        }
    }

    /// Joins every client that has ended; starts the next one of a sequential
    /// exercise; after a client that cannot be judged (it did not compile, was
    /// stopped, or the server was never bound), stops the rest. `true` when it
    /// started a client, so the caller looks again at once.
    fn client_finished(&mut self) -> Result<bool> {
        let setting = self.setting;
        let clients = &mut self.clients;
        let mut at = 0;
        while at < clients.running.len() {
            if !clients.running[at].1.is_finished() {
                at += 1;
                continue;
            }
            let (pos, c) = clients.running.remove(at);
            let in_context = matches!(c.exec, Exec::Evcxr { .. });
            let (kernel, mut observed) = c.join(setting.engine.options.output_cap);
            let port = setting.ports.clients[pos];
            observed.port = (port != setting.ports.port).then_some(port);
            let fatal = matches!(
                observed.ending,
                Ending::DoesNotCompile(_) | Ending::RunnerFailed(_)
            ) || observed.stopped.is_some()
                || !self.bound
                || self.cancelled
                || self.timed_out
                || (kernel.is_none() && in_context);
            clients.ended[pos] = Some(observed);
            self.spare.extend(kernel);
            if fatal && !clients.fatal {
                clients.fatal = true;
                clients.all().for_each(|c| c.stop(Stop::Cleanup));
            }
        }
        let sequential_next = clients.running.is_empty() && !clients.fatal && !clients.done();
        if sequential_next {
            // Each client in a context of its own: a fresh child, so nothing
            // the previous client left running remains.
            let index = setting.ex.clients[clients.next];
            let r = setting.start_cell(index, false, false, &mut self.spare)?;
            clients.running.push((clients.next, r));
            clients.next += 1;
            clients.compiling = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Once every client is done: the server's grace (or less, when it is
    /// seen idle), then it is stopped and joined, its context and the spare
    /// ones given back, and what the run saw is said. `None` when cancelled.
    fn wind_down(self) -> Option<ExerciseObservation> {
        let ExerciseRun {
            clients,
            mut server,
            spare,
            relay,
            setting,
            bound,
            timed_out,
            cancelled,
            ..
        } = self;
        let (lane, ex, ports) = (setting.lane, setting.ex, setting.ports);
        let opts = &setting.engine.options;
        let tables = (&lane.tables, ports.server);
        wait_for_end_or_idle(&server, bound.then_some(tables), opts.grace);
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
            return None;
        }
        let clients: Vec<CellObservation> = clients
            .ended
            .into_iter()
            .zip(&ex.clients)
            .map(|(o, &i)| o.unwrap_or_else(|| CellObservation::not_run(i)))
            .collect();
        let wire = relay.map(super::net::relay::Relay::finish);
        Some(ExerciseObservation {
            server: server_observed,
            clients,
            bound,
            timed_out,
            server_kept_running,
            port: ports.port,
            host: opts.host.clone(),
            server_port: (ports.server != ports.port).then_some(ports.server),
            wire: wire.filter(|_| opts.trace),
        })
    }
}
