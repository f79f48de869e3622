//! What a run found: verdicts, as data. A student's broken code is an
//! outcome here, never an `Err`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exec::source::Diagnostic;

/// The verdicts of LESSON-FORMAT.md, spelled as REPORT-FORMAT.md writes them.
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

/// Why a cell or exercise did not pass, for people and for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// One line, for the report's `message`.
    pub message: String,
    /// Unified diffs, expected against actual.
    pub diff: Option<String>,
    /// Compiler errors, positioned in the lesson.
    pub diagnostics: Vec<Diagnostic>,
    /// What the failing cell wrote to stderr, trimmed, when it helps.
    pub stderr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub line: usize,
    pub verdict: Verdict,
    /// Whether the cell has an `output` block (the report's `cells` lists those).
    pub checked: bool,
    pub duration: Duration,
    pub failure: Option<Failure>,
    /// Taken from the result cache rather than run.
    #[serde(skip)]
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExerciseResult {
    pub id: String,
    pub line: usize,
    pub verdict: Verdict,
    pub points: u32,
    pub duration: Duration,
    pub failure: Option<Failure>,
    /// Taken from the result cache rather than run.
    #[serde(skip)]
    pub cached: bool,
}

impl ExerciseResult {
    pub fn score(&self) -> u32 {
        if self.verdict.passed() {
            self.points
        } else {
            0
        }
    }
}

#[derive(Debug, Clone)]
pub struct LessonResult {
    pub path: PathBuf,
    pub cells: Vec<CellResult>,
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
        l.cells.iter().all(|c| c.verdict.passed()) && l.exercises.iter().all(|e| e.verdict.passed())
    })
}
