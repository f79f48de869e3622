//! What execution saw, before any judging: how each cell ended, why the
//! runner stopped it, what it wrote, what the compiler said of it ([`At`] a
//! cell and a line of its code). `exec` produces these; `judge` turns them
//! into verdicts, which keep the compiler's messages as they are.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A place in a cell's code: the cell's index in the lesson, a 1-based line
/// within its code, and a 1-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct At {
    pub cell: usize,
    pub line: usize,
    pub column: usize,
}

/// One compiler message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub level: String,
    pub code: Option<String>,
    pub message: String,
    /// The primary span; `None` when it points at code the student did not write.
    pub at: Option<At>,
    /// Width of the primary span on its first line, at least 1.
    pub width: usize,
    pub label: String,
    pub help: Vec<String>,
}

/// Why the runner killed a cell's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The exercise's clock (or a plain cell's limit) ran out.
    Deadline,
    /// It was still compiling at the compile limit (`--compile-timeout`):
    /// the compiler was stopped, whatever it was doing.
    CompileDeadline,
    /// It wrote more than the output cap.
    Flood,
    /// The exercise was already decided, or the server's grace ran out.
    Cleanup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Panic,
    /// A `?` returned an error from the cell.
    Error,
}

/// A panic, or an error returned with `?`, as the cell's runtime recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Line within the cell (1-based), or 0 when the location is not the cell's.
    pub cell_line: usize,
    pub thread: String,
    pub message: String,
}

/// How the evaluation of a cell ended, as evcxr told it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// evcxr's `eval` returned; the cell may still have panicked.
    Returned,
    /// rustc rejected the code.
    DoesNotCompile(Vec<Diagnostic>),
    /// Refused before compiling: it reads files or the environment at compile time.
    Refused(String),
    /// The child process died; how, as the OS said it.
    Died(String),
    /// evcxr (or aula around it) failed for another reason.
    RunnerFailed(String),
    /// The cell never ran (the exercise ended first).
    NotRun,
}

/// One cell of an exercise.
#[derive(Debug, Clone)]
pub struct CellObservation {
    /// Index of the cell in its lesson.
    pub cell: usize,
    pub ending: Ending,
    pub stopped: Option<Stop>,
    /// Its code started running (compiled, and past the gate).
    pub started: bool,
    /// At most the output cap of what it wrote to stdout.
    pub stdout: String,
    /// How many bytes it wrote to stdout in all.
    pub stdout_bytes: u64,
    pub stderr: String,
    pub faults: Vec<Fault>,
    /// Faults of the plain cells replayed before it.
    pub replay_faults: Vec<Fault>,
    pub duration: Duration,
    /// The port it was given, where that is not the exercise's `PORT`: a
    /// client with faults on the wire reaches the server through a relay
    /// port of its own.
    pub port: Option<u16>,
}

impl CellObservation {
    pub fn not_run(cell: usize) -> CellObservation {
        CellObservation {
            cell,
            ending: Ending::NotRun,
            stopped: None,
            started: false,
            stdout: String::new(),
            stdout_bytes: 0,
            stderr: String::new(),
            faults: Vec::new(),
            replay_faults: Vec::new(),
            duration: Duration::ZERO,
            port: None,
        }
    }
}

/// One run of an exercise.
#[derive(Debug, Clone)]
pub struct ExerciseObservation {
    pub server: CellObservation,
    /// Every client of the exercise, in order; those never reached are `NotRun`.
    pub clients: Vec<CellObservation>,
    /// The server bound `PORT`.
    pub bound: bool,
    /// The exercise's clock ran out (or the compile limit).
    pub timed_out: bool,
    /// The server did not end by itself within its grace time.
    pub server_kept_running: bool,
    pub port: u16,
    pub host: String,
    /// With `--trace`: the port the server was given (the clients' `port`
    /// is the relay's), and what went over each connection.
    pub server_port: Option<u16>,
    pub wire: Option<Vec<Connection>>,
}

/// Which side of a connection sent a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

/// Bytes one side sent, from `offset` in its direction of the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub from: Side,
    pub offset: u64,
    pub data: Vec<u8>,
    /// When the relay passed it on, in microseconds since the Unix epoch:
    /// for captures (`--pcap`), never compared.
    #[serde(default)]
    pub at_us: u64,
    /// What a `wire=` fault made of this datagram, if anything: the trace
    /// shows a dropped one as dropped, not as if it had never been sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<ChunkFault>,
}

/// What the relay did to a UDP datagram under its client's `wire=` faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkFault {
    /// `drop:N`: the client sent it; the server never got it.
    Dropped,
    /// `dup:N`: the second copy, made by the relay.
    Duplicate,
    /// `swap:N`: held back, and sent after the datagram that came next.
    Late,
}

/// One connection (TCP) or one client address (UDP) through the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The client's address, as the server would have seen it.
    pub client: String,
    /// The address the client reached (`HOST` and `PORT` as it was given
    /// them): the server's, as the client saw it.
    #[serde(default)]
    pub server: String,
    /// In the order they went, the first bytes of each direction.
    pub chunks: Vec<Chunk>,
    /// Bytes the client sent, and the server, in all.
    pub sent: u64,
    pub received: u64,
    /// Bytes beyond the first [`Connection::KEEP`] of a direction were
    /// left out.
    pub cut: bool,
}

impl Connection {
    /// Bytes the relay keeps of each direction of a connection; the rest
    /// is counted. Here, not in the relay, so that a report saying where a
    /// connection was cut reads it from what was observed.
    pub const KEEP: usize = 4096;
}

/// One plain cell.
#[derive(Debug, Clone)]
pub struct PlainObservation {
    pub cell: usize,
    pub ending: Ending,
    pub stopped: Option<Stop>,
    /// What it wrote, when it ran to its end.
    pub output: Option<String>,
    pub stderr: String,
    pub faults: Vec<Fault>,
    /// Its output went through evcxr's pipe because of a `?` of its own.
    pub piped: bool,
    pub duration: Duration,
}

impl PlainObservation {
    /// A cell that ended before it could run (or write anything).
    pub fn ended(cell: usize, ending: Ending) -> PlainObservation {
        PlainObservation {
            cell,
            ending,
            stopped: None,
            output: None,
            stderr: String::new(),
            faults: Vec::new(),
            piped: false,
            duration: Duration::ZERO,
        }
    }
}

/// Limits the judge measures against.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub output_cap: usize,
    pub cell_timeout: Duration,
    /// How long a cell's code may take to compile.
    pub compile_limit: Duration,
}
