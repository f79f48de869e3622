//! Execution: contexts, ports, watchdogs. All processes and evcxr live below
//! this module; above it, a lesson goes in and verdicts come out.

pub mod capture;
mod exercise;
pub mod kernel;
mod plain;
mod pool;
pub mod ports;
pub mod runtime;
pub mod sandbox;
mod shape;
pub mod source;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::lesson::{Exercise, Lesson};
use crate::outcome::{CellResult, ExerciseResult, LessonResult};

#[derive(Debug, Clone)]
pub struct Options {
    /// Most bytes a cell may write to stdout (LESSON-FORMAT.md: 1 MiB).
    pub output_cap: usize,
    /// How long a server may take to end by itself after its last client.
    pub grace: Duration,
    /// Wall-clock limit of a plain cell.
    pub cell_timeout: Duration,
    /// The address the runner provides as `HOST`.
    pub host: String,
    /// Resource limits of the processes that run students' code.
    pub limits: sandbox::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            output_cap: 1 << 20,
            grace: Duration::from_secs(1),
            cell_timeout: crate::lesson::DEFAULT_TIMEOUT,
            host: "127.0.0.1".to_owned(),
            limits: sandbox::Limits::default(),
        }
    }
}

/// Progress, as it happens, for reporters that print while the run goes on.
pub enum Event<'a> {
    LessonStarted(&'a Lesson),
    CellFinished(&'a Lesson, &'a CellResult),
    ExerciseStarted(&'a Lesson, &'a Exercise),
    ExerciseFinished(&'a Lesson, &'a ExerciseResult),
}

pub struct Engine {
    options: Options,
    pool: pool::Pool,
    /// Capture folders and the children's working folder; removed on drop.
    scratch: tempfile::TempDir,
    next_capture: usize,
}

impl Engine {
    pub fn new(options: Options) -> Result<Engine> {
        let scratch = tempfile::Builder::new().prefix("aula-").tempdir()?;
        let workdir = scratch.path().join("work");
        std::fs::create_dir_all(&workdir)?;
        // Room for the sentinel and evcxr's own lines beyond the cell's cap.
        let channel_cap = options.output_cap + 64 * 1024;
        Ok(Engine {
            pool: pool::Pool::new(workdir, channel_cap, options.limits),
            options,
            scratch,
            next_capture: 0,
        })
    }

    /// Starts `n` contexts in the background, so they are warm when needed.
    pub fn warm(&self, n: usize) {
        self.pool.warm(n);
    }

    fn capture_dir(&mut self, name: &str) -> PathBuf {
        self.next_capture += 1;
        self.scratch
            .path()
            .join(format!("{:04}-{name}", self.next_capture))
    }

    /// Runs a lesson's plain cells, then the selected exercises. A failure of
    /// the runner itself (evcxr cannot start, no free port) becomes the
    /// verdict of the exercise it hit, and the others still run. After an
    /// interrupt (see `sandbox::interrupted`) it returns what finished.
    pub fn run_lesson(
        &mut self,
        lesson: &Lesson,
        selected: &dyn Fn(&Exercise) -> bool,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<LessonResult> {
        on_event(Event::LessonStarted(lesson));
        let exercises: Vec<&Exercise> = lesson.exercises.iter().filter(|e| selected(e)).collect();
        let plain = plain::run(self, lesson, on_event)?;
        let mut results = Vec::new();
        for ex in exercises {
            if sandbox::interrupted() {
                break;
            }
            on_event(Event::ExerciseStarted(lesson, ex));
            let begun = std::time::Instant::now();
            let result = match exercise::run(self, lesson, ex, &plain.replayable) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => ExerciseResult {
                    id: ex.id.clone(),
                    line: ex.line,
                    verdict: crate::outcome::Verdict::Crashed,
                    points: ex.points,
                    duration: begun.elapsed(),
                    failure: Some(crate::outcome::Failure {
                        message: format!("aula could not run this exercise: {e:#}"),
                        ..Default::default()
                    }),
                },
            };
            on_event(Event::ExerciseFinished(lesson, &result));
            results.push(result);
        }
        Ok(LessonResult {
            path: lesson.path.clone(),
            cells: plain.results,
            exercises: results,
        })
    }
}
