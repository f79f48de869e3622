//! A run: the plan carried out. Plain cells of each lesson run in order on
//! one thread, exercises on `jobs` workers across lessons (an exercise waits
//! only for its own lesson's plain cells), results are judged, stored in the
//! cache and handed to reporters as they come.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::exec::{Cancel, Engine};
use crate::judge;
use crate::lesson::{Dep, Exercise, Lesson, LessonError};
use crate::observation::Ending;
use crate::outcome::{
    Cause, CellResult, ExerciseResult, Finished, LessonResult, PlainResult, Role, Verdict,
};
use crate::plan::{Keys, Plan, Replay, Selection, replay_of};
use crate::report::{Event, Reporter};

enum Message {
    Plain(usize, Vec<PlainResult>),
    Exercise(usize, usize, ExerciseResult),
}

/// An exercise whose run failed around it (no context, no port, a panic in
/// aula): `crashed`, with the reason, and the run goes on.
fn runner_failure(ex: &Exercise, message: String) -> ExerciseResult {
    let server = CellResult::new(ex.server, Some(Role::Server), Verdict::Crashed).with_cause(
        Cause::RunnerFailed {
            message: message.clone(),
        },
    );
    let clients = ex
        .clients
        .iter()
        .enumerate()
        .map(|(k, &c)| CellResult::new(c, Some(Role::Client(k)), Verdict::Skipped));
    ExerciseResult {
        id: ex.id.clone(),
        verdict: Verdict::Crashed,
        cause: Some(Cause::RunnerFailed { message }),
        decided_by: Some(0),
        cells: std::iter::once(server).chain(clients).collect(),
        points: ex.points,
        duration: Duration::ZERO,
        port: None,
        cached: false,
        wire: None,
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Runs and judges one exercise; `None` when cancelled.
fn exercise(
    engine: &Engine,
    lesson: &Lesson,
    ex: &Exercise,
    replay: &[Replay],
    keys: &Keys<'_>,
    cancel: &Cancel,
) -> Option<ExerciseResult> {
    if let Some(cached) = keys.cached_exercise(lesson, ex, replay) {
        return Some(cached);
    }
    let begun = Instant::now();
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        engine.exercise(lesson, ex, replay, cancel)
    }));
    let mut result = match ran {
        Ok(Ok(Some(obs))) => judge::exercise(lesson, ex, &obs, engine.options().bounds()),
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => runner_failure(ex, format!("aula could not run this exercise: {e:#}")),
        Err(panic) => runner_failure(
            ex,
            format!(
                "aula failed while running this exercise: {}",
                panic_text(&*panic)
            ),
        ),
    };
    result.duration = begun.elapsed();
    if cancel.is_cancelled() {
        return None;
    }
    keys.store_exercise(lesson, ex, replay, &result);
    Some(result)
}

/// The sets of crates a lesson's units link, each once.
fn crate_sets(lesson: &Lesson) -> Vec<Vec<Dep>> {
    if lesson.crates.is_empty() {
        return Vec::new();
    }
    let mut sets: Vec<Vec<Dep>> = lesson
        .exercises
        .iter()
        .map(|ex| lesson.crates_of(ex))
        .chain((0..lesson.cells.len()).map(|i| lesson.crates_of_cell(i)))
        .filter(|set| !set.is_empty())
        .collect();
    sets.sort();
    sets.dedup();
    sets
}

/// The crates of `lessons` that [`prepare_crates`] would have to build (not
/// in the cache yet), by name: what to tell someone who waits for it.
pub fn crates_to_build(engine: &Engine, lessons: &[Lesson]) -> Vec<String> {
    let mut names: Vec<String> = lessons
        .iter()
        .flat_map(crate_sets)
        .filter(|set| !engine.crates_ready(set))
        .flatten()
        .map(|d| d.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Fetches and builds the crates of every `:dep` line of `lessons`, each set
/// once (LESSON-FORMAT 1.2: before any exercise runs). A set that cannot be
/// had is an error of the lesson, at the line of the crate cargo's message
/// names (or the set's first), with cargo's message.
pub fn prepare_crates(engine: &Engine, lessons: &[Lesson]) -> Result<(), Vec<LessonError>> {
    let mut errors = Vec::new();
    for lesson in lessons {
        for set in crate_sets(lesson) {
            let Err(failed) = engine.crates(&set) else {
                continue;
            };
            let named = set
                .iter()
                .find(|d| failed.cargo.contains(&format!("`{}`", d.name)))
                .unwrap_or(&set[0]);
            let error = LessonError {
                path: lesson.path.clone(),
                line: Some(named.line),
                cell: None,
                message: format!(
                    "`:dep {}` could not be fetched or built; cargo says:\n{}",
                    named.name, failed.cargo
                ),
            };
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `aula run` once its lessons are chosen: the engine and the cache, how
/// many exercises run at once, and where the report goes.
pub struct Command {
    pub engine: crate::exec::Builder,
    pub cache: Option<crate::cache::Cache>,
    pub jobs: usize,
    /// The JSON report on stdout, instead of the human one.
    pub print_json: bool,
    /// Where to write a JUnit XML report too.
    pub junit: Option<std::path::PathBuf>,
    /// Where to write each exercise's capture (`--pcap`).
    pub pcap: Option<std::path::PathBuf>,
    /// What the run was given, as a hash ([`crate::plan::inputs`]).
    pub inputs: String,
    pub partition: Option<crate::partition::Partition>,
}

/// What a run left: what it found, the host its cells were given (for
/// blessing), and the signal handlers, kept until the command ends.
pub struct Ran {
    pub finished: Finished,
    pub host: String,
    pub signals: crate::exec::Signals,
}

impl Command {
    /// Starts the engine, plans `lessons` against the cache, and runs the
    /// plan with the reporters. `Err`: the engine could not start.
    pub fn run(self, lessons: &[Lesson], selection: &Selection) -> anyhow::Result<Ran> {
        let std_types = crate::exec::evcxr::analysis::needs_std_types(lessons);
        let engine = (self.engine)
            .std_types(crate::exec::StdTypes::Fixed(std_types))
            .start()?;
        if let Err(errors) = prepare_crates(&engine, lessons) {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            anyhow::bail!("{}", text.join("\nerror: "));
        }
        let cancel = Cancel::new();
        let signals = crate::exec::Signals::watch(&cancel);
        let environment = crate::exec::toolchain::environment(engine.options(), engine.isolated());
        let run_info = crate::report::json::RunInfo {
            aula: env!("CARGO_PKG_VERSION").to_owned(),
            inputs: self.inputs,
            lessons: lessons
                .iter()
                .map(|l| l.path.display().to_string())
                .collect(),
            partition: self.partition.map(|p| p.to_string()),
            all_units: selection.all_units.clone(),
            units: selection.units.clone(),
        };
        let keys = Keys::new(&environment, self.cache.as_ref());
        let mut plan = Plan::new(lessons, &|l, ex| selection.selected(l, ex), &keys);
        for lp in &mut plan.lessons {
            lp.report_plain = selection.reports_plain(lp.lesson);
        }
        // Started now, they warm up while the first cells are prepared; none
        // when the cache has everything.
        engine.warm(plan.contexts_needed(self.jobs));
        let mut reporters =
            crate::report::Reporters::for_run(self.print_json, self.junit, run_info);
        if let Some(dir) = self.pcap {
            reporters
                .0
                .push(Box::new(crate::report::pcap::Captures::new(dir)?));
        }
        let finished = execute(&engine, &plan, &keys, self.jobs, &cancel, &mut reporters);
        engine.sweep();
        let host = engine.options().host.clone();
        Ok(Ran {
            finished,
            host,
            signals,
        })
    }
}

/// Runs and judges a lesson's plain cells.
pub fn plain(
    engine: &Engine,
    lesson: &Lesson,
    keys: &Keys<'_>,
    cancel: &Cancel,
) -> Vec<PlainResult> {
    let bounds = engine.options().bounds();
    let results: Vec<PlainResult> = engine
        .plain(lesson, cancel)
        .into_iter()
        .map(|run| {
            let o = &run.observation;
            let ran_through =
                o.ending == Ending::Returned && o.faults.is_empty() && o.output.is_some();
            PlainResult {
                result: judge::plain(lesson, o, bounds, &engine.options().host),
                checked: lesson.cell(o.cell).expected.is_some(),
                replay: ran_through.then_some(run.wrapped),
            }
        })
        .collect();
    if !cancel.is_cancelled() {
        keys.store_plain(lesson, &results);
    }
    results
}

/// Each lesson's replays of its plain cells, published by the plain thread
/// once they have run; an exercise waits here for its own lesson's only.
struct Ready {
    slots: Mutex<Vec<Option<Vec<Replay>>>>,
    signal: Condvar,
}

impl Ready {
    fn new(lessons: usize) -> Ready {
        Ready {
            slots: Mutex::new(vec![None; lessons]),
            signal: Condvar::new(),
        }
    }

    fn publish(&self, lesson: usize, replay: Vec<Replay>) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())[lesson] = Some(replay);
        self.signal.notify_all();
    }

    /// Bounded by the plain thread, which fills every slot in turn,
    /// cancelled or not.
    fn wait(&self, lesson: usize) -> Vec<Replay> {
        let mut r = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        while r[lesson].is_none() {
            r = self.signal.wait(r).unwrap_or_else(|e| e.into_inner());
        }
        r[lesson].clone().unwrap_or_default()
    }
}

/// The exercises the cache could not answer, as (lesson, exercise) indices
/// into the plan: the workers' queue.
fn exercise_tasks(plan: &Plan<'_>) -> Vec<(usize, usize)> {
    plan.lessons
        .iter()
        .enumerate()
        .flat_map(|(li, l)| {
            (0..l.exercises.len())
                .filter(move |&k| l.cached[k].is_none())
                .map(move |k| (li, k))
        })
        .collect()
}

/// The plain thread: each lesson's plain cells in order (from the cache
/// where it has them), then its replays published for its exercises.
fn plain_lessons(
    engine: &Engine,
    plan: &Plan<'_>,
    keys: &Keys<'_>,
    cancel: &Cancel,
    ready: &Ready,
    tx: &Sender<Message>,
) {
    for (li, l) in plan.lessons.iter().enumerate() {
        let results = match &l.plain {
            Some(cached) => cached.clone(),
            None if cancel.is_cancelled() => Vec::new(),
            None => plain(engine, l.lesson, keys, cancel),
        };
        let replay = replay_of(&results);
        // Sent before the exercises may start, so reporters hear of a
        // lesson's cells before its exercises.
        let _ = tx.send(Message::Plain(li, results));
        ready.publish(li, replay);
    }
}

/// The worker pool of `run` and `grade`: up to `jobs` threads in `scope`
/// (at least one, never more than there are items), each with a lane of
/// its own (`0..`, the engine's lane it uses), taking the next item until
/// none is left, the run is cancelled, `work` says it was (`None`), or
/// nobody listens for results any more. Each item is taken once; what
/// `work` makes of it is sent on `tx` as soon as it is made.
pub fn spawn_workers<'scope, T, R, F>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    items: &'scope [T],
    jobs: usize,
    cancel: &'scope Cancel,
    tx: &Sender<R>,
    work: F,
) where
    T: Sync,
    R: Send + 'scope,
    F: Fn(usize, &T) -> Option<R> + Send + Sync + 'scope,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    for lane in 0..jobs.max(1).min(items.len()) {
        let (tx, next, work) = (tx.clone(), next.clone(), work.clone());
        scope.spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || cancel.is_cancelled() {
                    break;
                }
                let Some(made) = work(lane, &items[i]) else {
                    break;
                };
                if tx.send(made).is_err() {
                    break;
                }
            }
        });
    }
}

/// What the threads sent, in the order it came, to the reporter and into
/// the slots. Cached exercises are reported as soon as their lesson's plain
/// cells are.
fn gather(
    plan: &Plan<'_>,
    rx: Receiver<Message>,
    reporter: &mut dyn Reporter,
    plain_slots: &mut [Vec<PlainResult>],
    slots: &mut [Vec<Option<ExerciseResult>>],
) {
    for message in rx {
        match message {
            Message::Plain(li, results) => {
                let lesson = plan.lessons[li].lesson;
                if plan.lessons[li].report_plain {
                    for r in &results {
                        reporter.event(&Event::CellFinished(lesson, r));
                    }
                }
                plain_slots[li] = results;
                for r in slots[li].iter().flatten() {
                    reporter.event(&Event::ExerciseFinished(lesson, r));
                }
            }
            Message::Exercise(li, k, result) => {
                reporter.event(&Event::ExerciseFinished(plan.lessons[li].lesson, &result));
                slots[li][k] = Some(result);
            }
        }
    }
}

/// The slots made into each lesson's result. A cancelled run reports what
/// finished: lessons it never reached are left out.
fn lesson_results<'a>(
    plan: &Plan<'a>,
    plain_slots: Vec<Vec<PlainResult>>,
    slots: Vec<Vec<Option<ExerciseResult>>>,
    cancel: &Cancel,
) -> (Vec<LessonResult>, Vec<&'a Lesson>) {
    plan.lessons
        .iter()
        .zip(plain_slots)
        .zip(slots)
        .map(|((l, cells), exercises)| {
            let result = LessonResult {
                path: l.lesson.path.clone(),
                cells: if l.report_plain { cells } else { Vec::new() },
                exercises: exercises.into_iter().flatten().collect(),
            };
            (result, l.lesson)
        })
        .filter(|(r, _)| !cancel.is_cancelled() || !r.cells.is_empty() || !r.exercises.is_empty())
        .unzip()
}

/// Carries out the plan. Reporters hear of each result as it comes, then of
/// the whole run. What students' code may have left running is the caller's
/// to sweep ([`Engine::sweep`]), once the results are on their way.
pub fn execute(
    engine: &Engine,
    plan: &Plan<'_>,
    keys: &Keys<'_>,
    jobs: usize,
    cancel: &Cancel,
    reporter: &mut dyn Reporter,
) -> Finished {
    let begun = Instant::now();
    let lessons: Vec<&Lesson> = plan.lessons.iter().map(|l| l.lesson).collect();
    reporter.event(&Event::Started {
        lessons: &lessons,
        exercises: plan.lessons.iter().map(|l| l.exercises.len()).sum(),
    });
    let ready = Ready::new(plan.lessons.len());
    let tasks = exercise_tasks(plan);
    let mut plain_slots: Vec<Vec<PlainResult>> = vec![Vec::new(); plan.lessons.len()];
    let mut slots: Vec<Vec<Option<ExerciseResult>>> =
        plan.lessons.iter().map(|l| l.cached.clone()).collect();

    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<Message>();
        {
            let (tx, ready) = (tx.clone(), &ready);
            scope.spawn(move || plain_lessons(engine, plan, keys, cancel, ready, &tx));
        }
        let ready = &ready;
        // An exercise waits only for its own lesson's plain cells; `None`
        // from it means the run was cancelled.
        spawn_workers(scope, &tasks, jobs, cancel, &tx, move |_, &(li, k)| {
            let replay = ready.wait(li);
            let lesson = plan.lessons[li].lesson;
            let ex = &lesson.exercises[plan.lessons[li].exercises[k]];
            let result = exercise(engine, lesson, ex, &replay, keys, cancel)?;
            Some(Message::Exercise(li, k, result))
        });
        drop(tx);
        gather(plan, rx, reporter, &mut plain_slots, &mut slots);
    });

    let (results, lessons) = lesson_results(plan, plain_slots, slots, cancel);
    let finished = Finished {
        results,
        elapsed: begun.elapsed(),
        contexts_started: engine.contexts_started(),
        signal: cancel.signal(),
    };
    reporter.event(&Event::Finished(&finished, &lessons));
    finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// The threads each lane ran on.
    type Lanes = HashMap<usize, HashSet<std::thread::ThreadId>>;

    /// What the pool sent for `items`, with the lanes that took them, and
    /// the threads each lane ran on.
    fn pooled(
        items: &[usize],
        jobs: usize,
        cancel: &Cancel,
        work: impl Fn(usize, &usize) -> Option<usize> + Send + Sync,
    ) -> (Vec<(usize, usize)>, Lanes) {
        let threads = Mutex::new(Lanes::new());
        let sent = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (threads, work) = (&threads, &work);
            spawn_workers(scope, items, jobs, cancel, &tx, move |lane, item| {
                let id = std::thread::current().id();
                threads.lock().unwrap().entry(lane).or_default().insert(id);
                Some((lane, work(lane, item)?))
            });
            drop(tx);
            rx.into_iter().collect::<Vec<_>>()
        });
        (sent, threads.into_inner().unwrap())
    }

    #[test]
    fn every_item_is_made_once_and_every_result_arrives() {
        let items: Vec<usize> = (0..200).collect();
        let (sent, _) = pooled(&items, 4, &Cancel::new(), |_, &i| Some(i * 2));
        let mut made: Vec<usize> = sent.iter().map(|&(_, r)| r).collect();
        made.sort();
        assert_eq!(made, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn each_worker_has_a_lane_of_its_own_and_no_more_than_jobs_or_items() {
        let items: Vec<usize> = (0..64).collect();
        let (_, threads) = pooled(&items, 3, &Cancel::new(), |_, &i| {
            std::thread::sleep(Duration::from_millis(1));
            Some(i)
        });
        assert!(threads.keys().all(|&lane| lane < 3), "{threads:?}");
        // One thread per lane, and no thread under two lanes.
        assert!(threads.values().all(|t| t.len() == 1), "{threads:?}");
        let all: HashSet<_> = threads.values().flatten().collect();
        assert_eq!(all.len(), threads.len());

        let (_, threads) = pooled(&[7, 8], 16, &Cancel::new(), |_, &i| Some(i));
        assert!(threads.keys().all(|&lane| lane < 2), "{threads:?}");
        let (sent, _) = pooled(&[7, 8], 0, &Cancel::new(), |_, &i| Some(i));
        assert_eq!(sent.len(), 2, "no jobs still means one worker");
    }

    #[test]
    fn a_cancel_stops_taking_new_items() {
        let items: Vec<usize> = (0..100).collect();
        let cancel = Cancel::new();
        let (sent, _) = pooled(&items, 1, &cancel, |_, &i| {
            if i == 3 {
                cancel.cancel();
            }
            Some(i)
        });
        let made: Vec<usize> = sent.iter().map(|&(_, r)| r).collect();
        assert_eq!(made, vec![0, 1, 2, 3], "the item in hand is finished");

        let cancel = Cancel::new();
        cancel.cancel();
        let (sent, _) = pooled(&items, 4, &cancel, |_, &i| Some(i));
        assert!(sent.is_empty());
    }

    #[test]
    fn a_worker_told_none_stops() {
        let items: Vec<usize> = (0..100).collect();
        let (sent, _) = pooled(&items, 1, &Cancel::new(), |_, &i| (i < 5).then_some(i));
        assert_eq!(sent.len(), 5);
    }
}
