//! Execution: contexts, ports, watchdogs. All processes and evcxr live below
//! this module; above it, a lesson goes in and verdicts come out.

pub mod capture;
mod exercise;
pub mod kernel;
pub mod netns;
mod plain;
mod pool;
pub mod ports;
pub mod runtime;
pub mod sandbox;
mod shape;
pub mod source;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;

use crate::cache::{Cache, Key, KeyBuilder};
use crate::lesson::{CellKind, Exercise, Lesson};
use crate::outcome::{CellResult, ExerciseResult, Failure, LessonResult, Verdict};

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
    /// rustc's `-C opt-level` for cells. `0` by default: lessons' code is
    /// small and waits on the network, and compiling is most of a run.
    pub opt_level: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            output_cap: 1 << 20,
            grace: Duration::from_secs(1),
            cell_timeout: crate::lesson::DEFAULT_TIMEOUT,
            host: "127.0.0.1".to_owned(),
            limits: sandbox::Limits::default(),
            opt_level: "0".to_owned(),
        }
    }
}

/// Progress, as it happens, for reporters that print while the run goes on.
pub enum Event<'a> {
    LessonStarted(&'a Lesson),
    CellFinished(&'a Lesson, &'a CellResult),
    ExerciseFinished(&'a Lesson, &'a ExerciseResult),
}

pub struct Engine {
    options: Options,
    pool: pool::Pool,
    /// Capture folders and the children's working folder; removed on drop.
    scratch: tempfile::TempDir,
    next_capture: AtomicUsize,
    cache: Option<Cache>,
    /// What else decides a verdict besides the lesson: computed once.
    environment: OnceLock<String>,
    jobs: usize,
    netns: Option<Arc<netns::Netns>>,
}

/// The toolchain that compiles cells, as `rustc -vV` describes it.
fn toolchain() -> String {
    std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Engine {
    /// `cache`: where to keep results (`None`: run everything). `jobs`: how
    /// many exercises run at once. `netns`: the namespace students' code runs
    /// in (`--isolate`).
    pub fn new(
        options: Options,
        cache: Option<Cache>,
        jobs: usize,
        netns: Option<Arc<netns::Netns>>,
    ) -> Result<Engine> {
        let scratch = tempfile::Builder::new().prefix("aula-").tempdir()?;
        let workdir = scratch.path().join("work");
        std::fs::create_dir_all(&workdir)?;
        // Room for the sentinel and evcxr's own lines beyond the cell's cap.
        let channel_cap = options.output_cap + 64 * 1024;
        Ok(Engine {
            pool: pool::Pool::new(
                workdir,
                channel_cap,
                options.limits,
                options.opt_level.clone(),
                netns.clone(),
            ),
            netns,
            options,
            scratch,
            next_capture: AtomicUsize::new(0),
            cache,
            environment: OnceLock::new(),
            jobs: jobs.max(1),
        })
    }

    /// Starts `n` contexts in the background, so they are warm when needed.
    pub fn warm(&self, n: usize) {
        self.pool.warm(n);
    }

    /// Contexts worth starting ahead for these lessons: none when every
    /// selected exercise and plain cell is in the cache, so a fully cached
    /// run never starts evcxr.
    pub fn contexts_needed(
        &self,
        lessons: &[Lesson],
        selected: &dyn Fn(&Exercise) -> bool,
    ) -> usize {
        let mut plain = false;
        let mut exercises = false;
        for lesson in lessons {
            let mut chosen = lesson.exercises.iter().filter(|e| selected(e)).peekable();
            match self.cached_plain(lesson) {
                Some(run) => {
                    let replay = run.replayable();
                    exercises |= chosen.any(|e| {
                        let key = self.exercise_key(lesson, e, &replay);
                        self.cached_exercise(&key, e).is_none()
                    });
                }
                // The plain cells run, so what exercises replay is not known
                // yet: count them as to be run.
                None => {
                    plain |= lesson.cells.iter().any(|c| c.kind == CellKind::Plain);
                    exercises |= chosen.peek().is_some();
                }
            }
        }
        if exercises {
            2 * self.jobs
        } else {
            usize::from(plain)
        }
    }

    fn capture_dir(&self, name: &str) -> PathBuf {
        let n = self.next_capture.fetch_add(1, Ordering::SeqCst) + 1;
        self.scratch.path().join(format!("{n:04}-{name}"))
    }

    fn environment(&self) -> &str {
        self.environment.get_or_init(|| {
            let isolated = self.netns.is_some();
            format!("{:?}\nisolated: {isolated}\n{}", self.options, toolchain())
        })
    }

    /// A process in the namespace students' code runs in, when isolated.
    fn netns_pid(&self) -> Option<i32> {
        self.netns.as_ref().map(|n| n.pid())
    }

    fn plain_key(&self, lesson: &Lesson, index: usize) -> Key {
        let mut key = KeyBuilder::new("plain").field("environment", self.environment());
        // State flows down a notebook: a cell's verdict depends on every
        // plain cell above it.
        for cell in lesson.cells[..=index]
            .iter()
            .filter(|c| c.kind == CellKind::Plain)
        {
            key = key
                .field("line", cell.line.to_string())
                .field("code", &cell.code);
        }
        let expected = lesson.cells[index].expected.as_ref();
        key.field("expected", expected.map_or("\0none", |e| e.text.as_str()))
            .finish()
    }

    /// `replay`: the plain cells that ran through, which the exercise's cells
    /// replay; a plain cell that timed out once and passes now changes what
    /// the exercise sees, so it changes the key.
    fn exercise_key(&self, lesson: &Lesson, ex: &Exercise, replay: &[plain::Replay]) -> Key {
        let mut key = KeyBuilder::new("exercise")
            .field("environment", self.environment())
            .field("timeout", format!("{:?}", ex.timeout))
            .field("replay", format!("{replay:?}"));
        let cells: Vec<usize> = std::iter::once(ex.server)
            .chain(ex.clients.iter().copied())
            .collect();
        let last = cells
            .iter()
            .map(|&i| lesson.cell(i).line)
            .max()
            .unwrap_or(0);
        for cell in lesson.plain_cells_above(last) {
            key = key
                .field("plain-line", cell.line.to_string())
                .field("plain", &cell.code);
        }
        for i in cells {
            let cell = lesson.cell(i);
            key = key
                .field("line", cell.line.to_string())
                .field("code", &cell.code)
                .field(
                    "expected",
                    cell.expected.as_ref().map_or("\0none", |e| e.text.as_str()),
                );
        }
        key.finish()
    }

    /// The lesson's plain cells from the cache, if every one is there.
    fn cached_plain(&self, lesson: &Lesson) -> Option<plain::PlainRun> {
        let cache = self.cache.as_ref()?;
        let mut run = plain::PlainRun::default();
        for (index, cell) in lesson.cells.iter().enumerate() {
            if cell.kind == CellKind::Plain {
                let mut entry: plain::PlainEntry = cache.get(&self.plain_key(lesson, index))?;
                entry.result.cached = true;
                run.entries.push((index, entry));
            }
        }
        Some(run)
    }

    fn cached_exercise(&self, key: &Key, ex: &Exercise) -> Option<ExerciseResult> {
        let mut result: ExerciseResult = self.cache.as_ref()?.get(key)?;
        result.cached = true;
        // Not part of the key: these come from the lesson as it is now.
        result.points = ex.points;
        result.id = ex.id.clone();
        Some(result)
    }

    fn store_plain(&self, lesson: &Lesson, run: &plain::PlainRun) {
        let Some(cache) = &self.cache else { return };
        for (index, entry) in &run.entries {
            if entry.result.verdict.cacheable() {
                cache.put(&self.plain_key(lesson, *index), entry);
            }
        }
    }

    /// Runs one exercise, or takes it from the cache. A failure of the runner
    /// itself becomes the exercise's verdict. `None`: interrupted.
    fn exercise(
        &self,
        lesson: &Lesson,
        ex: &Exercise,
        replay: &[plain::Replay],
    ) -> Option<ExerciseResult> {
        let key = self.exercise_key(lesson, ex, replay);
        if let Some(result) = self.cached_exercise(&key, ex) {
            return Some(result);
        }
        let begun = std::time::Instant::now();
        let result = match exercise::run(self, lesson, ex, replay) {
            Ok(r) => r?,
            Err(e) => ExerciseResult {
                id: ex.id.clone(),
                line: ex.line,
                verdict: Verdict::Crashed,
                points: ex.points,
                duration: begun.elapsed(),
                failure: Some(Failure {
                    message: format!("aula could not run this exercise: {e:#}"),
                    ..Default::default()
                }),
                cached: false,
            },
        };
        if let Some(cache) = &self.cache
            && result.verdict.cacheable()
            && !sandbox::interrupted()
        {
            cache.put(&key, &result);
        }
        Some(result)
    }

    /// Runs a lesson's plain cells, then the selected exercises, `jobs` at a
    /// time; results come back in lesson order whatever finished first. A
    /// failure of the runner itself (evcxr cannot start, no free port)
    /// becomes the verdict of the exercise it hit, and the others still run.
    /// After an interrupt (see `sandbox::interrupted`) it returns what
    /// finished.
    pub fn run_lesson(
        &mut self,
        lesson: &Lesson,
        selected: &dyn Fn(&Exercise) -> bool,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<LessonResult> {
        on_event(Event::LessonStarted(lesson));
        let exercises: Vec<&Exercise> = lesson.exercises.iter().filter(|e| selected(e)).collect();
        let plain = match self.cached_plain(lesson) {
            Some(run) => {
                for (_, entry) in &run.entries {
                    on_event(Event::CellFinished(lesson, &entry.result));
                }
                run
            }
            None => {
                let run = plain::run(self, lesson, on_event)?;
                if !sandbox::interrupted() {
                    self.store_plain(lesson, &run);
                }
                run
            }
        };
        let replay = plain.replayable();

        let mut slots: Vec<Option<ExerciseResult>> = vec![None; exercises.len()];
        let next = AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Option<ExerciseResult>)>();
        let this = &*self;
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.min(exercises.len()) {
                let tx = tx.clone();
                let (next, exercises, replay) = (&next, &exercises, &replay);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= exercises.len() || sandbox::interrupted() {
                            break;
                        }
                        let result = this.exercise(lesson, exercises[i], replay);
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Events come from this thread only, in the order exercises end.
            for (i, result) in rx {
                if let Some(result) = result {
                    on_event(Event::ExerciseFinished(lesson, &result));
                    slots[i] = Some(result);
                }
            }
        });
        Ok(LessonResult {
            path: lesson.path.clone(),
            cells: plain.results(),
            exercises: slots.into_iter().flatten().collect(),
        })
    }
}
