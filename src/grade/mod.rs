//! `aula grade` (GRADE-FORMAT.md): many submissions against a reference.
//!
//! Each submission's graded sides are spliced into the reference by origin
//! ([`submission`]), each check runs as an exercise of that spliced lesson
//! on the shared engine, and what it found becomes a [`StudentGrade`]: pure
//! data, appended to a results log as soon as the student is done, from
//! which the gradebook and feedback are written ([`output`]).

pub mod batch;
pub mod canvas;
pub mod compare;
pub mod gradescope;
pub mod human;
pub mod intake;
pub mod output;
pub mod refuse;
pub mod reuse;
pub mod similar;
pub mod submission;

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use rust_i18n::t;
use serde::{Deserialize, Serialize};

use crate::exec::{Cancel, Engine};
use crate::judge;
use crate::lesson::Lesson;
use crate::outcome::{Cause, ExerciseResult, Verdict};
use crate::plan::Replay;
use crate::report;
use submission::{CheckKind, Sides, Spliced, Submission};

/// How long the compiler may spend on one of a student's cells unless
/// `--compile-timeout` says (GRADE-FORMAT 1.1): past it, the check gets
/// `timeout` and the batch goes on.
pub const COMPILE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Scores are numbers rounded to two decimals, written without a fraction
/// when whole (`2`, `1.5`, `0.33`).
fn two_decimals<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    let r = round2(*x);
    if r.fract() == 0.0 && r.abs() < 1e15 {
        s.serialize_i64(r as i64)
    } else {
        s.serialize_f64(r)
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A check's verdict in grades: a verdict of LESSON-FORMAT.md, spelled as
/// `Verdict` spells it, or `missing` when the submission has no code for
/// the check. Written as that one word, so grades.json, the feedback and
/// Gradescope's results keep GRADE-FORMAT.md's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckVerdict {
    Ran(Verdict),
    Missing,
}

impl CheckVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Ran(v) => v.as_str(),
            CheckVerdict::Missing => "missing",
        }
    }
}

impl std::fmt::Display for CheckVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

// By hand: serde's derive would write `Ran` as `{"Ran": "pass"}`, and
// `untagged` cannot name a unit variant by a string.
impl Serialize for CheckVerdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckVerdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::IntoDeserializer as _;
        let word = String::deserialize(d)?;
        if word == "missing" {
            return Ok(CheckVerdict::Missing);
        }
        Verdict::deserialize(word.as_str().into_deserializer())
            .map(CheckVerdict::Ran)
            .map_err(|e: serde::de::value::Error| serde::de::Error::custom(e))
    }
}

/// How far a submission's grading got (GRADE-FORMAT.md): `graded`, `invalid`
/// (it could not be read as a submission) or `error` (aula failed on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradeStatus {
    Graded,
    Invalid,
    Error,
}

impl GradeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GradeStatus::Graded => "graded",
            GradeStatus::Invalid => "invalid",
            GradeStatus::Error => "error",
        }
    }
}

impl std::fmt::Display for GradeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One test a check ran (a reference client, a student's client, a server),
/// named as the student may see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestGrade {
    pub test: String,
    pub verdict: Verdict,
    /// A hidden client of the reference (an addition to GRADE-FORMAT 1.1's
    /// grades.json, written only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckGrade {
    pub check: CheckKind,
    pub verdict: CheckVerdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Compiler messages, pointing at the student's own file and line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler: Option<String>,
    /// What the check ran, each with its verdict; hidden clients by number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestGrade>,
}

impl CheckGrade {
    pub fn passed(&self) -> bool {
        self.verdict == CheckVerdict::Ran(Verdict::Pass)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExerciseGrade {
    pub id: String,
    pub points: u32,
    #[serde(serialize_with = "two_decimals")]
    pub score: f64,
    pub checks: Vec<CheckGrade>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentGrade {
    pub student: String,
    pub path: String,
    pub status: GradeStatus,
    #[serde(serialize_with = "two_decimals")]
    pub score: f64,
    pub max_score: u32,
    pub errors: Vec<String>,
    pub exercises: Vec<ExerciseGrade>,
}

/// What a check says in the feedback's language: its message and the
/// names of the tests it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Local {
    pub message: Option<String>,
    pub tests: Vec<String>,
}

/// What a student's feedback says in their language where grades say it in
/// English: each check's words, and the reasons a submission could not be
/// read (an error without one here is shown as `errors` has it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Said {
    pub checks: Vec<Vec<Local>>,
    pub errors: Vec<String>,
}

/// A student's grade with the feedback written for them, as the results
/// log keeps it: everything the outputs are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graded {
    pub grade: StudentGrade,
    pub feedback: String,
    /// Each check that ran, with its key, for a later regrade to reuse
    /// (see [`reuse`]); in the log only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<reuse::KeptCheck>,
}

/// The exercises a reference grades, with their checks: those with at least
/// one graded side.
pub fn graded_exercises(reference: &Lesson) -> Vec<(usize, Vec<CheckKind>)> {
    reference
        .exercises
        .iter()
        .enumerate()
        .map(|(i, ex)| (i, submission::graded_checks(reference, ex)))
        .filter(|(_, checks)| !checks.is_empty())
        .collect()
}

/// An exercise's score: its points split equally among its graded sides,
/// the shares of those that passed added up.
pub fn exercise_score(points: u32, checks: &[CheckGrade]) -> f64 {
    if checks.is_empty() {
        return 0.0;
    }
    let share = f64::from(points) / checks.len() as f64;
    round2(share * checks.iter().filter(|c| c.passed()).count() as f64)
}

fn missing(check: CheckKind, lang: &str) -> (CheckGrade, Local) {
    let grade = CheckGrade {
        check,
        verdict: CheckVerdict::Missing,
        message: Some(t!("grade.missing", locale = "en", check = check.as_str()).into_owned()),
        diff: None,
        compiler: None,
        tests: Vec::new(),
    };
    let message = t!("grade.missing", locale = lang, check = check.as_str()).into_owned();
    (
        grade,
        Local {
            message: Some(message),
            tests: Vec::new(),
        },
    )
}

/// The message of a check that did not pass, in `lang`. A cell whose
/// details are withheld (`shown`) is named with its verdict and nothing it
/// said: not its panic message, error or standard error.
fn check_message(
    spliced: &Spliced,
    r: &ExerciseResult,
    shown: &[bool],
    lang: &str,
) -> Option<String> {
    if r.verdict.passed() {
        return None;
    }
    if r.decided_by.is_none()
        && let Some(Cause::RunnerFailed { message }) = &r.cause
    {
        return Some(message.clone());
    }
    if let Some(k) = r.decided_by
        && let Some(cell) = r.cells.get(k)
        && !shown.get(k).copied().unwrap_or(false)
    {
        let who = report::who(&spliced.lesson, cell, lang);
        let verdict = r.verdict.as_str();
        let key = if spliced.lesson.cell(cell.cell).is_hidden() {
            "grade.hidden_failed"
        } else {
            "grade.withheld_failed"
        };
        return Some(t!(key, locale = lang, who = who, verdict = verdict).into_owned());
    }
    report::exercise_message(&spliced.lesson, r, lang)
}

/// Which of a check's cells may be shown in detail (their output, diff,
/// panic message, error): none of a hidden client, and none that ran
/// alongside or after one (the server while a hidden client ran, a later
/// visible client), since a student's server may print, panic with or pass
/// on what a hidden client sent.
fn shown_cells(spliced: &Spliced, r: &ExerciseResult) -> Vec<bool> {
    let lesson = &spliced.lesson;
    let ex = &spliced.exercise;
    let first_hidden = ex.clients.iter().position(|&i| lesson.cell(i).is_hidden());
    let hidden_ran = |upto: usize| {
        first_hidden.is_some_and(|h| {
            h < upto
                && r.cells
                    .iter()
                    .any(|c| c.cell == ex.clients[h] && c.verdict != Verdict::Skipped)
        })
    };
    r.cells
        .iter()
        .map(|c| {
            if lesson.cell(c.cell).is_hidden() {
                return false;
            }
            match ex.clients.iter().position(|&i| i == c.cell) {
                Some(k) => !hidden_ran(k),
                // The server runs alongside every client.
                None => !hidden_ran(ex.clients.len()),
            }
        })
        .collect()
}

/// Whether a cell's cause carries words the cell's own program chose (a
/// panic message, an error, what it wrote to standard error).
fn says_what_ran(c: &crate::outcome::CellResult) -> bool {
    matches!(
        c.cause,
        Some(
            Cause::Panicked { .. }
                | Cause::ReturnedError { .. }
                | Cause::ReplayPanicked { .. }
                | Cause::CellStopped { .. }
                | Cause::RunnerFailed { .. }
        )
    )
}

/// A judged check, as grades say it; the details of what ran alongside
/// hidden clients dropped ([`shown_cells`]).
fn check_grade(
    check: CheckKind,
    spliced: &Spliced,
    r: &ExerciseResult,
    lang: &str,
) -> (CheckGrade, Local) {
    let lesson = &spliced.lesson;
    let shown = shown_cells(spliced, r);
    let diffs: String = r
        .cells
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .filter_map(|(c, _)| c.diff.as_deref())
        .collect();
    // Compiler messages come from the code alone, before anything ran: only
    // a hidden client's are withheld (they would show its code).
    let compiler: String = r
        .cells
        .iter()
        .filter(|c| !lesson.cell(c.cell).is_hidden())
        .flat_map(|c| &c.diagnostics)
        .map(|d| report::render_diagnostic(d, lesson))
        .collect();
    let withheld = r
        .cells
        .iter()
        .zip(&shown)
        .any(|(c, s)| !s && (c.diff.is_some() || says_what_ran(c)));
    let tests = r
        .cells
        .iter()
        .map(|c| TestGrade {
            test: report::who(lesson, c, "en"),
            verdict: c.verdict,
            hidden: lesson.cell(c.cell).is_hidden(),
        })
        .collect();
    let decided_withheld = r
        .decided_by
        .is_some_and(|k| !shown.get(k).copied().unwrap_or(false));
    let say = |lang: &str| {
        let message = match &r.cause {
            // How far past the cap a flood got depends on timing; grades
            // must not.
            Some(Cause::OutputLimit { cap, .. }) => {
                r.decided_by.and_then(|k| r.cells.get(k)).map(|c| {
                    let who = report::who(lesson, c, lang);
                    t!("grade.output_limit", locale = lang, who = who, cap = cap).into_owned()
                })
            }
            _ => check_message(spliced, r, &shown, lang),
        };
        message.map(|mut m| {
            let hidden_decided = r
                .decided_by
                .and_then(|k| r.cells.get(k))
                .is_some_and(|c| lesson.cell(c.cell).is_hidden());
            // The withheld server's message says so itself.
            if withheld && (hidden_decided || !decided_withheld) {
                m.push_str(&t!("grade.withheld", locale = lang));
            }
            unport(&m, r.port)
        })
    };
    let grade = CheckGrade {
        check,
        verdict: CheckVerdict::Ran(r.verdict),
        message: say("en"),
        diff: (!diffs.is_empty()).then(|| unport(&diffs, r.port)),
        compiler: (!compiler.is_empty()).then_some(compiler),
        tests,
    };
    let local = Local {
        message: say(lang),
        tests: r
            .cells
            .iter()
            .map(|c| report::who(lesson, c, lang))
            .collect(),
    };
    (grade, local)
}

/// `text` with the check's port, which differs from run to run, written
/// `[PORT]` (as `output` blocks write it), so grading twice gives the same
/// grades.
fn unport(text: &str, port: Option<u16>) -> String {
    let Some(port) = port.map(|p| p.to_string()) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&port) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + port.len()..].chars().next();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..at]);
        out.push_str(if digit(before) || digit(after) {
            &port
        } else {
            "[PORT]"
        });
        rest = &rest[at + port.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether aula itself failed on the check (status `error`), not the code:
/// what it said, in English and in `lang`. What it said about a cell that
/// ran alongside hidden clients is withheld like the rest of that cell
/// ([`shown_cells`]): it may quote what the cell printed.
fn runner_failure(
    spliced: &Spliced,
    check: CheckKind,
    r: &ExerciseResult,
    lang: &str,
) -> Option<(String, String)> {
    let ex = &spliced.exercise.id;
    let check = check.as_str();
    let said = |message: &str| {
        let m = format!("{ex} {check}: {message}");
        (m.clone(), m)
    };
    if r.decided_by.is_none()
        && let Some(Cause::RunnerFailed { message }) = &r.cause
    {
        return Some(said(message));
    }
    let shown = shown_cells(spliced, r);
    r.cells
        .iter()
        .zip(&shown)
        .find_map(|(c, s)| match &c.cause {
            Some(Cause::RunnerFailed { message }) if *s => Some(said(message)),
            Some(Cause::RunnerFailed { .. }) => {
                let say = |l: &str| {
                    t!("grade.withheld_runner", locale = l, id = ex, check = check).into_owned()
                };
                Some((say("en"), say(lang)))
            }
            _ => None,
        })
}

/// The reference and what every check needs of it.
pub struct Batch<'a> {
    pub reference: &'a Lesson,
    pub engine: &'a Engine,
    /// The reference's plain cells that ran through, run once for the batch.
    pub replay: Vec<Replay>,
    /// The reference's halves, compiled once for the batch.
    pub natives: crate::exec::native::Natives,
    /// The language of feedback.
    pub lang: &'a str,
    /// `--max-submission-size`: a larger submission is not read.
    pub max_submission: intake::ByteSize,
    /// Checks an earlier batch's log holds, taken instead of run.
    pub reuse: reuse::Reuse,
}

impl Batch<'_> {
    /// Grades one submission; `None` when the batch was cancelled meanwhile
    /// (the student is then graded again by `--resume`).
    /// `lane`: the engine's lane (network namespace) this worker uses.
    pub fn grade(&self, sub: &Submission, lane: usize, cancel: &Cancel) -> Option<Graded> {
        self.grade_sides(
            sub,
            submission::read(sub, self.max_submission),
            (lane, true),
            cancel,
        )
    }

    /// Grades the reference as a student's submission of it, in the
    /// sandbox, before any student: a reference that does not pass its own
    /// checks there would give every student the same zero. The checks it
    /// fails (`exercise/check: verdict`); `None` when cancelled.
    pub fn check_reference(&self, cancel: &Cancel) -> Option<Vec<String>> {
        let sub = Submission {
            student: "reference".to_owned(),
            path: self.reference.path.clone(),
            unreadable: None,
        };
        let sides = submission::sides_of_lesson(self.reference);
        // Always run: nothing of an earlier batch stands in for it.
        let graded = self.grade_sides(&sub, sides, (0, false), cancel)?;
        let mut failed: Vec<String> = graded.grade.errors.clone();
        for ex in &graded.grade.exercises {
            for c in ex.checks.iter().filter(|c| !c.passed()) {
                let why = c.message.as_deref().unwrap_or_default();
                failed.push(format!("{}/{}: {} ({why})", ex.id, c.check, c.verdict));
            }
        }
        Some(failed)
    }

    /// `(lane, reusing)`: the engine's lane, and whether checks an earlier
    /// batch kept may stand in for running them.
    fn grade_sides(
        &self,
        sub: &Submission,
        sides: Result<Sides, Vec<intake::Unreadable>>,
        (lane, reusing): (usize, bool),
        cancel: &Cancel,
    ) -> Option<Graded> {
        let graded = graded_exercises(self.reference);
        let mut grade = blank_grade(self.reference, sub, GradeStatus::Graded);
        let mut said = Said::default();
        let sides = match sides {
            Ok(s) => Some(s),
            Err(reasons) => {
                grade.status = GradeStatus::Invalid;
                grade.errors = reasons.iter().map(|r| r.say("en")).collect();
                said.errors = reasons.iter().map(|r| r.say(self.lang)).collect();
                None
            }
        };
        // aula's own failures, in English and in the student's language.
        let mut failures = Vec::new();
        let mut kept = Vec::new();
        for (i, checks) in &graded {
            let ex = &self.reference.exercises[*i];
            let mut results = Vec::new();
            let mut messages = Vec::new();
            if let Some(sides) = &sides {
                for &check in checks {
                    let failed_before = failures.len();
                    let (g, m, key) =
                        self.check(ex, sides, check, (lane, reusing), cancel, &mut failures)?;
                    // What aula failed on is run again next time.
                    if let Some(key) = key.filter(|_| failures.len() == failed_before)
                        && reuse::KeptCheck::reusable(&g)
                    {
                        kept.push(reuse::KeptCheck {
                            key,
                            grade: g.clone(),
                            local: m.clone(),
                        });
                    }
                    results.push(g);
                    messages.push(m);
                }
            }
            grade.exercises.push(ExerciseGrade {
                id: ex.id.clone(),
                points: ex.points,
                score: exercise_score(ex.points, &results),
                checks: results,
            });
            said.checks.push(messages);
        }
        for (en, local) in failures {
            grade.errors.push(en);
            said.errors.push(local);
        }
        if grade.status == GradeStatus::Graded && !grade.errors.is_empty() {
            grade.status = GradeStatus::Error;
        }
        grade.score = round2(grade.exercises.iter().map(|e| e.score).sum());
        let feedback = output::feedback(&grade, &said, self.reference, self.lang);
        Some(Graded {
            grade,
            feedback,
            kept,
        })
    }

    fn check(
        &self,
        ex: &crate::lesson::Exercise,
        sides: &Sides,
        check: CheckKind,
        (lane, reusing): (usize, bool),
        cancel: &Cancel,
        errors: &mut Vec<(String, String)>,
    ) -> Option<(CheckGrade, Local, Option<String>)> {
        let Some(spliced) = submission::splice(self.reference, ex, sides, check) else {
            let (g, m) = missing(check, self.lang);
            return Some((g, m, None));
        };
        // Refused before anything compiles: the compiler is not sandboxed.
        for &index in &spliced.students_cells {
            let cell = spliced.lesson.cell(index);
            if cell.lang != crate::lesson::Lang::Rust {
                continue;
            }
            if let Some(construct) = refuse::refused(&cell.code) {
                let (g, m) = refused(&spliced, index, check, &construct, self.lang);
                return Some((g, m, None));
            }
        }
        let key = self.reuse.key(&spliced, check, &self.replay, self.lang);
        if reusing {
            if let Some(kept) = self.reuse.take(&key) {
                return Some((kept.grade, kept.local, Some(key)));
            }
            self.reuse.ran();
        }
        // The student's cells run from their own code, in a context; the
        // rest from the reference's compiled halves.
        let natives = self.natives.without(&spliced.students_cells);
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.engine.exercise_in(
                lane,
                &spliced.lesson,
                &spliced.exercise,
                (&self.replay, &natives),
                cancel,
            )
        }));
        let bounds = self.engine.options().bounds();
        let result = match ran {
            Ok(Ok(Some(obs))) => judge::exercise(&spliced.lesson, &spliced.exercise, &obs, bounds),
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => failed_run(&spliced, format!("aula could not run this check: {e:#}")),
            Err(_) => failed_run(&spliced, "aula failed while running this check".to_owned()),
        };
        if cancel.is_cancelled() {
            return None;
        }
        if let Some(said) = runner_failure(&spliced, check, &result, self.lang) {
            errors.push(said);
        }
        let (g, m) = check_grade(check, &spliced, &result, self.lang);
        Some((g, m, Some(key)))
    }
}

fn failed_run(spliced: &Spliced, message: String) -> ExerciseResult {
    let ex = &spliced.exercise;
    ExerciseResult {
        id: ex.id.clone(),
        verdict: Verdict::Crashed,
        cause: Some(Cause::RunnerFailed { message }),
        decided_by: None,
        cells: Vec::new(),
        points: ex.points,
        duration: std::time::Duration::ZERO,
        port: None,
        cached: false,
        wire: None,
    }
}

fn refused(
    spliced: &Spliced,
    index: usize,
    check: CheckKind,
    construct: &str,
    lang: &str,
) -> (CheckGrade, Local) {
    let role = if index == spliced.exercise.server {
        crate::outcome::Role::Server
    } else {
        let k = spliced
            .exercise
            .clients
            .iter()
            .position(|&c| c == index)
            .unwrap_or(0);
        crate::outcome::Role::Client(k)
    };
    let cell = crate::outcome::CellResult::new(index, Some(role), Verdict::CompileError);
    let say = |lang: &str| {
        let who = report::who(&spliced.lesson, &cell, lang);
        t!(
            "cause.refused",
            locale = lang,
            who = who,
            construct = construct
        )
        .into_owned()
    };
    let grade = CheckGrade {
        check,
        verdict: CheckVerdict::Ran(Verdict::CompileError),
        message: Some(say("en")),
        diff: None,
        compiler: None,
        tests: vec![TestGrade {
            test: report::who(&spliced.lesson, &cell, "en"),
            verdict: Verdict::CompileError,
            hidden: false,
        }],
    };
    let local = Local {
        message: Some(say(lang)),
        tests: vec![report::who(&spliced.lesson, &cell, lang)],
    };
    (grade, local)
}

/// Grades `subs` on `jobs` workers, handing each finished student to
/// `done` as it comes (the results log, the progress bar). Returns those
/// graded; a cancelled batch returns the ones that finished.
pub fn run_all(
    batch: &Batch<'_>,
    subs: &[Submission],
    jobs: usize,
    cancel: &Cancel,
    done: &mut dyn FnMut(&Graded),
) -> Vec<Graded> {
    let finished = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<Graded>();
        // `None`: the batch was cancelled. A panic in aula is that
        // student's `error`, and the batch goes on.
        crate::run::spawn_workers(scope, subs, jobs, cancel, &tx, |lane, sub| {
            let graded =
                std::panic::catch_unwind(AssertUnwindSafe(|| batch.grade(sub, lane, cancel)));
            match graded {
                Ok(graded) => graded,
                Err(_) => Some(crashed_student(batch, sub)),
            }
        });
        drop(tx);
        for graded in rx {
            done(&graded);
            finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(graded);
        }
    });
    batch.engine.sweep();
    finished.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// A student whose grading failed in aula itself: status `error`.
fn crashed_student(batch: &Batch<'_>, sub: &Submission) -> Graded {
    let mut grade = blank_grade(batch.reference, sub, GradeStatus::Error);
    grade.errors = vec!["aula failed while grading this submission".to_owned()];
    grade.exercises = graded_exercises(batch.reference)
        .iter()
        .map(|(i, _)| {
            let ex = &batch.reference.exercises[*i];
            ExerciseGrade {
                id: ex.id.clone(),
                points: ex.points,
                score: 0.0,
                checks: Vec::new(),
            }
        })
        .collect();
    let feedback = output::feedback(&grade, &Said::default(), batch.reference, batch.lang);
    Graded {
        grade,
        feedback,
        kept: Vec::new(),
    }
}

/// A student's grade before any check: nothing scored yet.
fn blank_grade(reference: &Lesson, sub: &Submission, status: GradeStatus) -> StudentGrade {
    StudentGrade {
        student: sub.student.clone(),
        path: sub.path.display().to_string(),
        status,
        score: 0.0,
        max_score: max_score(reference),
        errors: Vec::new(),
        exercises: Vec::new(),
    }
}

/// The most a submission can score: the points of the graded exercises.
pub fn max_score(reference: &Lesson) -> u32 {
    graded_exercises(reference)
        .iter()
        .map(|(i, _)| reference.exercises[*i].points)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(verdict: &str) -> CheckGrade {
        CheckGrade {
            check: CheckKind::Server,
            verdict: serde_json::from_value(serde_json::json!(verdict)).unwrap(),
            message: None,
            diff: None,
            compiler: None,
            tests: Vec::new(),
        }
    }

    fn result_of(spliced: &Spliced, verdicts: &[Verdict]) -> ExerciseResult {
        let ex = &spliced.exercise;
        let cells = ex
            .cells()
            .zip(verdicts)
            .enumerate()
            .map(|(k, (cell, &v))| {
                let role = match k {
                    0 => crate::outcome::Role::Server,
                    k => crate::outcome::Role::Client(k - 1),
                };
                let mut c = crate::outcome::CellResult::new(cell, Some(role), v);
                c.diff = (v == Verdict::Mismatch).then(|| format!("diff of cell {cell}\n"));
                c
            })
            .collect();
        ExerciseResult {
            id: ex.id.clone(),
            verdict: Verdict::Mismatch,
            cause: None,
            decided_by: None,
            cells,
            points: 1,
            duration: std::time::Duration::ZERO,
            port: None,
            cached: false,
            wire: None,
        }
    }

    #[test]
    fn nothing_of_a_hidden_client_or_of_what_ran_after_it_is_shown() {
        let reference = crate::lesson::parse(
            std::path::Path::new("ref.md"),
            "```rust,server,exercise=e\n// BEGIN SOLUTION\n// END SOLUTION\n```\n\n\
             ```rust,client,exercise=e\n```\n\n\
             ```rust,client,exercise=e,hidden\n```\n\n\
             ```rust,client,exercise=e\n```\n",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ana.md");
        std::fs::write(&path, "```rust,server,exercise=e\nprintln!(\"x\");\n```\n").unwrap();
        let sides = submission::read_file(&path, intake::DEFAULT_MAX_SIZE).unwrap();
        let ex = &reference.exercises[0];
        let spliced = submission::splice(&reference, ex, &sides, CheckKind::Server).unwrap();
        let m = Verdict::Mismatch;
        // Server, visible client, hidden client, a visible client after it.
        let r = result_of(&spliced, &[m, m, m, m]);
        assert_eq!(shown_cells(&spliced, &r), vec![false, true, false, false]);
        let (grade, _) = check_grade(CheckKind::Server, &spliced, &r, "en");
        let diff = grade.diff.unwrap();
        assert_eq!(diff, format!("diff of cell {}\n", ex.clients[0]));
        assert!(grade.tests.iter().any(|t| t.test == "hidden test 1"));
        // When the hidden client never ran, the server's output is shown.
        let s = Verdict::Skipped;
        let r = result_of(&spliced, &[m, m, s, s]);
        assert_eq!(shown_cells(&spliced, &r), vec![true, true, false, true]);

        // A server that panicked with what the hidden client sent: named
        // with its verdict, never with its words, in every language.
        let p = Verdict::Panic;
        let mut r = result_of(&spliced, &[p, Verdict::Pass, m, s]);
        let panicked = Cause::Panicked {
            thread: "main".to_owned(),
            line: Some(1),
            message: "zebra-secreta".to_owned(),
        };
        r.verdict = p;
        r.decided_by = Some(0);
        r.cause = Some(panicked.clone());
        r.cells[0].cause = Some(panicked);
        let (grade, local) = check_grade(CheckKind::Server, &spliced, &r, "pt");
        let message = grade.message.unwrap();
        assert_eq!(
            message,
            "the server (ana.md:1) did not pass (panic); what it printed or said \
             is not shown, since hidden tests ran alongside it"
        );
        assert!(
            local
                .message
                .unwrap()
                .starts_with("o servidor (ana.md:1) não passou (panic)")
        );
        assert_eq!(grade.diff, None);
        // Before any hidden client ran, it is the student's to read.
        r.cells[2].verdict = s;
        let (grade, _) = check_grade(CheckKind::Server, &spliced, &r, "en");
        assert!(grade.message.unwrap().contains("zebra-secreta"));
    }

    #[test]
    fn the_port_of_a_run_is_written_port_but_other_numbers_stay() {
        assert_eq!(
            unport("bound 40123 not 401234 or 140123", Some(40123)),
            "bound [PORT] not 401234 or 140123"
        );
        assert_eq!(unport("x", None), "x");
    }

    #[test]
    fn points_are_split_among_graded_sides_and_rounded() {
        assert_eq!(exercise_score(1, &[check("pass"), check("mismatch")]), 0.5);
        assert_eq!(exercise_score(2, &[check("pass"), check("pass")]), 2.0);
        assert_eq!(
            exercise_score(1, &[check("pass"), check("missing"), check("missing")]),
            0.33
        );
        assert_eq!(exercise_score(3, &[]), 0.0);
    }

    #[test]
    fn scores_are_written_as_numbers_without_needless_fractions() {
        let e = ExerciseGrade {
            id: "x".to_owned(),
            points: 2,
            score: 2.0,
            checks: Vec::new(),
        };
        assert!(serde_json::to_string(&e).unwrap().contains("\"score\":2,"));
        let e = ExerciseGrade {
            score: 1.0 / 3.0,
            ..e
        };
        assert!(
            serde_json::to_string(&e)
                .unwrap()
                .contains("\"score\":0.33,")
        );
    }
}
