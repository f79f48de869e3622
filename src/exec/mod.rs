//! Execution: contexts, ports, watchdogs. All processes and evcxr live below
//! this module; above it, a lesson goes in and verdicts come out.

pub mod capture;
mod exercise;
pub mod kernel;
mod plain;
mod pool;
pub mod ports;
pub mod runtime;
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            output_cap: 1 << 20,
            grace: Duration::from_secs(1),
            cell_timeout: crate::lesson::DEFAULT_TIMEOUT,
            host: "127.0.0.1".to_owned(),
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
            pool: pool::Pool::new(workdir, channel_cap),
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

    /// Runs a lesson's plain cells, then the selected exercises.
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
            on_event(Event::ExerciseStarted(lesson, ex));
            let result = exercise::run(self, lesson, ex, &plain.replayable)?;
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
