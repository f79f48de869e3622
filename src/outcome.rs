//! What a run found, as data: verdicts and their causes, per cell and per
//! exercise. A student's broken code is an outcome here, never an `Err`;
//! reporters turn causes into words.
//!
//! Cells are named by their index in the lesson (`cell`), and compiler
//! messages by a cell and a line within its code ([`At`](crate::observation::At)), never by a line of
//! the file: a result from the cache stays true when prose above it moves.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::observation::{Connection, Diagnostic};

/// The verdicts of LESSON-FORMAT.md, spelled as REPORT-FORMAT.md writes them,
/// and `skipped` for a cell of an exercise that never ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Mismatch,
    CompileError,
    Panic,
    Crashed,
    NotListening,
    Timeout,
    OutputLimit,
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Mismatch => "mismatch",
            Verdict::CompileError => "compile_error",
            Verdict::Panic => "panic",
            Verdict::Crashed => "crashed",
            Verdict::NotListening => "not_listening",
            Verdict::Timeout => "timeout",
            Verdict::OutputLimit => "output_limit",
            Verdict::Skipped => "skipped",
        }
    }

    pub fn passed(self) -> bool {
        self == Verdict::Pass
    }

    /// Whether the verdict says something about the code alone, so an
    /// unchanged cell would get it again. Timeouts, crashes and servers that
    /// never bound can come from a loaded or broken machine: run those again.
    pub fn cacheable(self) -> bool {
        !matches!(
            self,
            Verdict::Timeout | Verdict::Crashed | Verdict::NotListening
        )
    }
}

/// A cell of an exercise, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Server,
    /// The client's place among the exercise's clients, from 0.
    Client(usize),
}

/// Why a cell or an exercise did not pass. Words are the reporters' job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cause {
    /// rustc rejected the code (the diagnostics say why).
    DoesNotCompile,
    /// Code that reads files or the environment while compiling.
    Refused {
        construct: String,
    },
    /// evcxr or aula failed around the cell, not the cell itself.
    RunnerFailed {
        message: String,
    },
    OutputLimit {
        bytes: u64,
        cap: usize,
    },
    Panicked {
        thread: String,
        /// 1-based line within the cell's code, where the panic happened.
        line: Option<usize>,
        message: String,
    },
    /// A `?` returned this error from the cell.
    ReturnedError {
        message: String,
    },
    /// A plain cell above panicked when it ran again before this cell.
    ReplayPanicked {
        message: String,
    },
    Died {
        status: String,
    },
    /// The server ran, but did not bind `port` within the limit.
    NotBound {
        port: u16,
        limit: Duration,
    },
    /// The server ended without binding `port`.
    EndedWithoutBinding {
        port: u16,
    },
    /// A cell was still compiling at the compile limit, and the compiler
    /// was stopped.
    CompileTooLong {
        limit: Duration,
    },
    /// Cells still running at the limit; `cells` are indices into the
    /// exercise's results.
    StillRunning {
        cells: Vec<usize>,
        limit: Duration,
    },
    /// The exercise was stopped before all its clients ran.
    StoppedEarly,
    /// A plain cell stopped before its end without a panic.
    CellStopped {
        stderr: String,
        question_mark: bool,
    },
    /// Outputs differ from their `output` blocks; `cells` as above.
    Differs {
        cells: Vec<usize>,
        server_kept_running: bool,
    },
}

/// What one cell did: a plain cell, or a cell of an exercise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Index in the lesson's cells.
    pub cell: usize,
    /// For cells of exercises.
    pub role: Option<Role>,
    pub verdict: Verdict,
    pub cause: Option<Cause>,
    /// Unified diff, expected against actual.
    pub diff: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// What the cell wrote to stderr, trimmed, when it helps.
    pub stderr: Option<String>,
    pub duration: Duration,
    /// What the cell wrote to stdout, when it ran to its end (verdict `pass`
    /// or `mismatch`): what `--bless` writes back. Not cached.
    #[serde(skip)]
    pub actual: Option<String>,
    /// Taken from the result cache rather than run.
    #[serde(skip)]
    pub cached: bool,
}

impl CellResult {
    pub fn new(cell: usize, role: Option<Role>, verdict: Verdict) -> CellResult {
        CellResult {
            cell,
            role,
            verdict,
            cause: None,
            diff: None,
            diagnostics: Vec::new(),
            stderr: None,
            duration: Duration::ZERO,
            actual: None,
            cached: false,
        }
    }

    pub fn with_cause(mut self, cause: Cause) -> CellResult {
        self.cause = Some(cause);
        self
    }

    fn map_cells(&mut self, f: &dyn Fn(usize) -> usize) {
        self.cell = f(self.cell);
        for d in &mut self.diagnostics {
            if let Some(at) = d.at.as_mut() {
                at.cell = f(at.cell);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExerciseResult {
    pub id: String,
    pub verdict: Verdict,
    /// What decided the verdict, when it is not `pass`.
    pub cause: Option<Cause>,
    /// The cell whose failure decided the verdict (index into `cells`).
    pub decided_by: Option<usize>,
    /// The server, then each client, in the order they ran; `skipped` for
    /// those that never did.
    pub cells: Vec<CellResult>,
    pub points: u32,
    pub duration: Duration,
    /// The port the runner provided, for `[PORT]` when blessing. Not cached.
    #[serde(skip)]
    pub port: Option<u16>,
    #[serde(skip)]
    pub cached: bool,
    /// With `--trace`: what went over each connection (reports show it
    /// under a failure; `--pcap` writes every exercise's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<Vec<Connection>>,
}

impl ExerciseResult {
    pub fn score(&self) -> u32 {
        if self.verdict.passed() {
            self.points
        } else {
            0
        }
    }

    /// Renames every cell index (for the cache, which keeps them relative
    /// to the cells an exercise sees).
    pub fn map_cells(&mut self, f: &dyn Fn(usize) -> usize) {
        for c in &mut self.cells {
            c.map_cells(f);
        }
    }

    /// Diffs of the cells that differ, in run order.
    pub fn diff(&self) -> Option<String> {
        let diffs: Vec<&str> = self
            .cells
            .iter()
            .filter_map(|c| c.diff.as_deref())
            .collect();
        (!diffs.is_empty()).then(|| diffs.concat())
    }

    /// Compiler messages of every cell.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.cells.iter().flat_map(|c| &c.diagnostics)
    }

    /// The stderr of the cell that decided the verdict.
    pub fn stderr(&self) -> Option<&str> {
        self.cells.get(self.decided_by?)?.stderr.as_deref()
    }
}

/// A plain cell's result, with what exercises need to replay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainResult {
    pub result: CellResult,
    /// Whether the cell has an `output` block (the report's `cells` lists those).
    pub checked: bool,
    /// `Some(wrapped)` when the cell ran to its end, so exercise cells
    /// replay it (inside `{ }` when `wrapped`).
    pub replay: Option<bool>,
}

impl PlainResult {
    pub fn map_cells(&mut self, f: &dyn Fn(usize) -> usize) {
        self.result.map_cells(f);
    }
}

#[derive(Debug, Clone)]
pub struct LessonResult {
    pub path: PathBuf,
    pub cells: Vec<PlainResult>,
    pub exercises: Vec<ExerciseResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub exercises: usize,
    pub passed: usize,
    pub failed: usize,
    pub score: u32,
    pub max_score: u32,
}

impl Summary {
    pub fn of(lessons: &[LessonResult]) -> Summary {
        let mut s = Summary::default();
        for ex in lessons.iter().flat_map(|l| &l.exercises) {
            s.exercises += 1;
            if ex.verdict.passed() {
                s.passed += 1;
            } else {
                s.failed += 1;
            }
            s.score += ex.score();
            s.max_score += ex.points;
        }
        s
    }
}

/// Whether every cell and exercise passed: exit status 0 of REPORT-FORMAT.md.
pub fn all_passed(lessons: &[LessonResult]) -> bool {
    lessons.iter().all(|l| {
        l.cells.iter().all(|c| c.result.verdict.passed())
            && l.exercises.iter().all(|e| e.verdict.passed())
    })
}

/// What a run produced.
pub struct Finished {
    pub results: Vec<LessonResult>,
    pub elapsed: Duration,
    pub contexts_started: usize,
    /// The signal that stopped the run early, if one did.
    pub signal: Option<i32>,
}

impl Finished {
    pub fn all_passed(&self) -> bool {
        all_passed(&self.results)
    }
}
