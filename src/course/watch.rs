//! The interactive course: `aula` on a terminal. It shows the exercise the
//! student is on, runs it again whenever a lesson file is saved, and takes
//! rustlings' keys: `n` next, `h` hint, `l` list, `r` run again, `x` reset,
//! `q` quit.
//!
//! Three sources of events feed one loop: keys (a thread reading the
//! terminal), file changes (notify, debounced), and finished runs (a thread
//! that owns the engine, so contexts stay warm for the whole session).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use rust_i18n::t;

use super::{Course, Status};
use crate::cache::Cache;
use crate::exec::{Cancel, Engine};
use crate::lesson::{Lesson, LessonError};
use crate::outcome::Finished;
use crate::outcome::{ExerciseResult, PlainResult};
use crate::plan::{self, Keys, Plan};
use crate::report::{Event, Reporter, human};

/// How a session gets going: what `aula watch` was given.
pub struct Setup {
    pub paths: Vec<PathBuf>,
    pub engine: Engine,
    pub cache: Option<Cache>,
    pub jobs: usize,
    /// No file watching: `r` is the way to run again.
    pub manual_run: bool,
    pub lang: &'static str,
}

enum Message {
    Key(KeyEvent),
    /// A lesson file changed. `settled`: the change leaves it whole (a
    /// writer closed it, or a file was renamed onto it), so it can be read
    /// at once; otherwise more of the same save may follow.
    FilesChanged {
        settled: bool,
    },
    Ran(Box<Ran>),
    /// Something the runner wants the student to read.
    Notice(String),
}

/// A run the runner thread finished.
struct Ran {
    lessons: Vec<Lesson>,
    finished: Finished,
    cancelled: bool,
}

/// What the runner thread is asked to do.
struct Request {
    lessons: Vec<Lesson>,
    /// The exercises to run.
    units: Vec<plan::UnitId>,
    cancel: Cancel,
}

/// Hears nothing: the session renders whole results itself.
struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &Event<'_>) {}
}

fn runner(
    setup_engine: Engine,
    cache: Option<Cache>,
    jobs: usize,
    lang: &'static str,
    requests: Receiver<Request>,
    tx: Sender<Message>,
) {
    let engine = setup_engine;
    let environment = crate::exec::toolchain::environment(engine.options(), engine.isolated());
    for req in requests {
        let keys = Keys::new(&environment, cache.as_ref());
        let selected = |l: &Lesson, ex: &crate::lesson::Exercise| {
            req.units.contains(&plan::UnitId::exercise(l, ex))
        };
        let plan = Plan::new(&req.lessons, &selected, &keys);
        let untyped = crate::exec::evcxr::analysis::untyped_variables(&req.lessons);
        if let Some(u) = untyped.first()
            && !engine.std_source_found()
        {
            // The course goes on: the cell crashes with evcxr's words, and
            // this says what to install.
            let text = t!(
                "run.std_source_missing",
                locale = lang,
                at = u.at,
                var = u.variable
            );
            let _ = tx.send(Message::Notice(text.into_owned()));
        } else if !untyped.is_empty()
            && let Err(e) = engine.need_std_types()
        {
            let text = t!(
                "watch.std_types_failed",
                locale = lang,
                error = format!("{e:#}")
            );
            let _ = tx.send(Message::Notice(text.into_owned()));
        }
        // Exercises of a lesson whose crates failed still run (and fail
        // with the reason): the session waits for their results.
        prepare_crates(&engine, &req.lessons, lang, &tx);
        engine.warm(plan.contexts_needed(jobs).min(3));
        let finished = crate::run::execute(&engine, &plan, &keys, jobs, &req.cancel, &mut Quiet);
        let ran = Ran {
            cancelled: req.cancel.is_cancelled(),
            lessons: req.lessons,
            finished,
        };
        if tx.send(Message::Ran(Box::new(ran))).is_err() {
            break;
        }
        // After the verdict is on its way: the sweep waits for the contexts
        // being reset, which the student need not wait for.
        engine.sweep();
    }
}

/// Builds the lessons' crates before their first run, saying so: the first
/// time takes a while (tokio: about half a minute). When they cannot be
/// built, the notice says why, at the `:dep` line.
fn prepare_crates(engine: &Engine, lessons: &[Lesson], lang: &'static str, tx: &Sender<Message>) {
    let names = crate::run::crates_to_build(engine, lessons);
    if names.is_empty() {
        return;
    }
    let crates = names.join(", ");
    let text = t!("watch.crates_building", locale = lang, crates = crates);
    let _ = tx.send(Message::Notice(text.into_owned()));
    let begun = std::time::Instant::now();
    let text = match crate::run::prepare_crates(engine, lessons) {
        Ok(()) => t!(
            "watch.crates_built",
            locale = lang,
            crates = crates,
            secs = begun.elapsed().as_secs()
        ),
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            t!(
                "watch.crates_failed",
                locale = lang,
                errors = errors.join("\n")
            )
        }
    };
    let _ = tx.send(Message::Notice(text.into_owned()));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exercise,
    List { cursor: usize },
    ConfirmReset,
}

/// What the screen shows of the current exercise.
enum Shown {
    Nothing,
    Running,
    Result {
        result: ExerciseResult,
        plain_failures: Vec<PlainResult>,
    },
    LessonErrors(Vec<LessonError>),
}

struct Session {
    course: Course,
    current: Option<usize>,
    mode: Mode,
    shown: Shown,
    hint: bool,
    /// A line of news under the verdict (a warning, what a key did).
    notice: Option<String>,
    /// The watching status line.
    watching: String,
    running: Option<Cancel>,
    /// A run to start when the one under way ends.
    queued: Option<Vec<usize>>,
    requests: Sender<Request>,
    lang: &'static str,
    /// Progress recorded but not yet saved: saved once the screen shows
    /// it, as writing a file whole takes milliseconds of the verdict's way.
    unsaved: bool,
}

impl Session {
    fn lesson_count(&self) -> usize {
        self.course.lessons.len()
    }

    /// Asks the runner to run these entries; one run at a time, the newest
    /// request replacing a queued one.
    fn run(&mut self, entries: Vec<usize>) {
        if entries.is_empty() {
            return;
        }
        if let Some(cancel) = &self.running {
            cancel.cancel();
            self.queued = Some(entries);
            return;
        }
        let units: Vec<plan::UnitId> = entries
            .iter()
            .map(|&i| self.course.entries[i].unit.clone())
            .collect();
        let lessons: Vec<Lesson> = self
            .course
            .lessons
            .iter()
            .filter(|l| {
                l.exercises
                    .iter()
                    .any(|ex| units.contains(&plan::UnitId::exercise(l, ex)))
            })
            .cloned()
            .collect();
        let cancel = Cancel::new();
        self.running = Some(cancel.clone());
        if self.current.is_some_and(|c| entries.contains(&c)) {
            self.shown = Shown::Running;
            self.hint = false;
        }
        let _ = self.requests.send(Request {
            lessons,
            units,
            cancel,
        });
    }

    fn run_current(&mut self) {
        if let Some(c) = self.current {
            self.run(vec![c]);
        }
    }

    fn ran(&mut self, ran: Ran) {
        self.running = None;
        if let Some(queued) = self.queued.take() {
            self.run(queued);
            return;
        }
        if ran.cancelled {
            return;
        }
        for (result, lesson) in ran.finished.results.iter().zip(&ran.lessons) {
            let plain_failures: Vec<PlainResult> = result
                .cells
                .iter()
                .filter(|c| !c.result.verdict.passed())
                .cloned()
                .collect();
            for e in &result.exercises {
                self.course.record(lesson, e);
                let unit = lesson
                    .exercise(&e.id)
                    .map(|ex| plan::UnitId::exercise(lesson, ex));
                let is_current = self
                    .current
                    .is_some_and(|c| Some(&self.course.entries[c].unit) == unit.as_ref());
                if is_current {
                    self.shown = Shown::Result {
                        result: e.clone(),
                        plain_failures: plain_failures.clone(),
                    };
                }
            }
        }
        self.unsaved = true;
    }

    /// Saves the progress recorded since the last save.
    fn save_progress(&mut self) {
        if std::mem::take(&mut self.unsaved) {
            let _ = self.course.save();
        }
    }

    fn files_changed(&mut self) {
        let showing_errors = matches!(self.shown, Shown::LessonErrors(_));
        match self.course.reload() {
            // Read again, the same: nothing to do (an editor touched the
            // file without changing it), unless it was broken meanwhile.
            Ok(None) if !showing_errors => {}
            Ok(touched) => {
                let touched = touched.unwrap_or_default();
                // Reloading renumbers entries: find the current one again.
                let unit = self.course.progress.current.clone();
                self.current = unit
                    .and_then(|u| self.course.entries.iter().position(|e| e.unit == u))
                    .or_else(|| self.course.current());
                if matches!(self.shown, Shown::LessonErrors(_)) {
                    self.shown = Shown::Nothing;
                }
                // The current exercise always (the cache answers if nothing
                // it sees changed), and others the change touched that the
                // student has tried.
                let mut run: Vec<usize> = self.current.into_iter().collect();
                run.extend(touched.into_iter().filter(|&i| {
                    Some(i) != self.current && self.course.status(i) != Status::NotTried
                }));
                self.run(run);
            }
            Err(errors) => {
                if let Some(cancel) = &self.running {
                    cancel.cancel();
                }
                self.shown = Shown::LessonErrors(errors);
            }
        }
    }

    fn go_to(&mut self, i: usize) {
        self.current = Some(i);
        self.course.set_current(i);
        let _ = self.course.save();
        self.run_current();
    }

    /// Handles a key; `false` to quit.
    fn key(&mut self, key: KeyEvent) -> bool {
        if key.kind != KeyEventKind::Press {
            return true;
        }
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if ctrl_c {
            return false;
        }
        self.notice = None;
        match self.mode {
            Mode::ConfirmReset => {
                self.mode = Mode::Exercise;
                if matches!(key.code, KeyCode::Char('y' | 's' | 'Y' | 'S')) {
                    self.reset();
                }
            }
            Mode::List { cursor } => match key.code {
                KeyCode::Up | KeyCode::Char('k') => {
                    self.mode = Mode::List {
                        cursor: cursor.saturating_sub(1),
                    }
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    let last = self.course.entries.len().saturating_sub(1);
                    self.mode = Mode::List {
                        cursor: (cursor + 1).min(last),
                    }
                }
                KeyCode::Enter => {
                    self.mode = Mode::Exercise;
                    if cursor < self.course.entries.len() {
                        self.go_to(cursor);
                    }
                }
                KeyCode::Esc | KeyCode::Char('q' | 'l') => self.mode = Mode::Exercise,
                _ => {}
            },
            Mode::Exercise => match key.code {
                KeyCode::Char('q') | KeyCode::Esc => return false,
                KeyCode::Char('n') => {
                    if let Some(next) = self.course.next_not_done(self.current) {
                        self.go_to(next);
                    } else {
                        self.notice = Some(t!("watch.all_done", locale = self.lang).into_owned());
                    }
                }
                KeyCode::Char('h') => self.toggle_hint(),
                KeyCode::Char('l') => {
                    self.mode = Mode::List {
                        cursor: self.current.unwrap_or(0),
                    }
                }
                KeyCode::Char('r') => {
                    if matches!(self.shown, Shown::LessonErrors(_)) {
                        self.files_changed();
                    } else {
                        self.run_current();
                    }
                }
                KeyCode::Char('x') if self.current.is_some() => self.mode = Mode::ConfirmReset,
                _ => {}
            },
        }
        true
    }

    fn toggle_hint(&mut self) {
        let Some(c) = self.current else { return };
        let failed =
            matches!(&self.shown, Shown::Result { result, .. } if !result.verdict.passed());
        let has_hint = self.course.exercise_of(c).hint.is_some();
        if !has_hint {
            self.notice = Some(t!("watch.no_hint", locale = self.lang).into_owned());
        } else if !failed {
            self.notice = Some(t!("watch.hint_after_fail", locale = self.lang).into_owned());
        } else {
            self.hint = !self.hint;
        }
    }

    fn reset(&mut self) {
        let Some(c) = self.current else { return };
        let lesson = self.course.lesson_of(c);
        let id = self.course.exercise_of(c).id.clone();
        let lang = self.lang;
        match crate::lesson::student::reset(lesson, &id) {
            None => self.notice = Some(t!("watch.reset_none", locale = lang, id = id).into_owned()),
            Some(text) => {
                let path = lesson.path.clone();
                let written = crate::lesson::save(&path, &text);
                self.notice = Some(match written {
                    Ok(()) => t!("watch.reset_done", locale = lang, id = id).into_owned(),
                    Err(e) => t!(
                        "watch.reset_failed",
                        locale = lang,
                        path = path.display(),
                        error = e
                    )
                    .into_owned(),
                });
                // The watcher sees the write; without one, run it now.
                self.files_changed();
            }
        }
    }

    /// The whole screen, as text with colours.
    fn screen(&self) -> String {
        let lang = self.lang;
        let mut out: Vec<u8> = Vec::new();
        if let Mode::List { cursor } = self.mode {
            self.write_list(&mut out, cursor);
            return String::from_utf8_lossy(&out).into_owned();
        }
        self.write_heading(&mut out);
        self.write_shown(&mut out);
        let _ = writeln!(out);
        if let Some(n) = &self.notice {
            let _ = writeln!(out, "{n}");
        }
        if self.mode == Mode::ConfirmReset
            && let Some(c) = self.current
        {
            let id = &self.course.exercise_of(c).id;
            let _ = writeln!(out, "{}", t!("watch.reset_ask", locale = lang, id = id));
        }
        let _ = writeln!(out, "{}", self.watching);
        let _ = writeln!(out, "{}", t!("watch.keys", locale = lang));
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The list of exercises (`l`), with their statuses and the cursor.
    fn write_list(&self, out: &mut Vec<u8>, cursor: usize) {
        let lang = self.lang;
        let _ = writeln!(out, "{}\n", t!("watch.list_title", locale = lang));
        for (i, e) in self.course.entries.iter().enumerate() {
            let status = status_word(self.course.status(i), lang);
            let mark = if i == cursor { ">" } else { " " };
            let _ = writeln!(out, "{mark} {status:<12} {}", e.unit);
        }
    }

    /// Which exercise of which lesson, and the course's progress bar.
    fn write_heading(&self, out: &mut Vec<u8>) {
        let lang = self.lang;
        let total = self.course.entries.len();
        let done = self.course.done();
        match self.current {
            Some(c) => {
                let lesson = self.course.lesson_of(c);
                let k = self.course.entries[c].lesson + 1;
                let id = &self.course.exercise_of(c).id;
                let title = t!(
                    "watch.title",
                    locale = lang,
                    lesson = lesson.path.display(),
                    k = k,
                    n = self.lesson_count(),
                    id = id
                );
                let _ = writeln!(out, "{title}");
            }
            None => {
                let _ = writeln!(out, "aula");
            }
        }
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(0);
        let _ = writeln!(
            out,
            "{}{} {}\n",
            "█".repeat(filled),
            "░".repeat(width - filled),
            t!("watch.progress", locale = lang, done = done, total = total)
        );
    }

    /// What the current exercise shows: the lessons' errors, a run under
    /// way, its result, or that the course is done.
    fn write_shown(&self, out: &mut Vec<u8>) {
        let lang = self.lang;
        match (&self.shown, self.current) {
            (Shown::LessonErrors(errors), _) => {
                let _ = writeln!(out, "{}", t!("watch.lesson_errors", locale = lang));
                for e in errors {
                    let _ = writeln!(out, "  {e}");
                }
            }
            (_, None) if self.course.entries.is_empty() => {
                let _ = writeln!(out, "{}", t!("watch.no_exercises", locale = lang));
            }
            (_, None) => {
                let _ = writeln!(out, "{}", t!("watch.all_done", locale = lang));
            }
            (Shown::Running, Some(c)) => {
                let id = &self.course.exercise_of(c).id;
                let _ = writeln!(out, "{}", t!("watch.running", locale = lang, id = id));
            }
            (
                Shown::Result {
                    result,
                    plain_failures,
                },
                Some(c),
            ) => self.write_result(out, c, result, plain_failures),
            (Shown::Nothing, Some(_)) => {}
        }
    }

    /// A run's result: passed, or the failing plain cells, the verdict
    /// with its details, and the hint when the student asked for it.
    fn write_result(
        &self,
        out: &mut Vec<u8>,
        c: usize,
        result: &ExerciseResult,
        plain_failures: &[PlainResult],
    ) {
        let lang = self.lang;
        let lesson = self.course.lesson_of(c);
        if result.verdict.passed() {
            let _ = writeln!(
                out,
                "✓ {}",
                t!("watch.passed", locale = lang, id = result.id)
            );
            return;
        }
        if !plain_failures.is_empty() {
            let _ = writeln!(out, "{}", t!("watch.plain_failed", locale = lang));
            for p in plain_failures {
                let _ = human::plain_details(out, lesson, &p.result, lang);
            }
            let _ = writeln!(out);
        }
        let word = crate::report::verdict_word(result.verdict.as_str(), lang);
        let _ = writeln!(out, "✗ {}: {word}", result.id);
        let _ = human::exercise_details(out, lesson, result, lang, false);
        if self.hint
            && let Some(h) = &self.course.exercise_of(c).hint
        {
            let _ = writeln!(out);
            let _ = human::write_hint(out, h, lang);
        }
    }

    /// One message of the session's loop; false when the student quits.
    fn handle(&mut self, message: Message, rx: &Receiver<Message>) -> bool {
        match message {
            Message::Key(k) => return self.key(k),
            Message::FilesChanged { settled } => {
                let more = rest_of_save(settled, rx);
                self.files_changed();
                for m in more {
                    match m {
                        Message::Key(k) if !self.key(k) => return false,
                        Message::Ran(ran) => self.ran(*ran),
                        Message::Notice(n) => self.notice = Some(n),
                        _ => {}
                    }
                }
            }
            Message::Ran(ran) => self.ran(*ran),
            Message::Notice(n) => self.notice = Some(n),
        }
        true
    }
}

/// The longest wait for the rest of a save whose events do not say that
/// the file is whole (an editor that truncates, then writes): one reload
/// for the burst.
const SAVE_BURST: Duration = Duration::from_millis(40);

/// Takes in the rest of one save's events; what else came meanwhile, in
/// order. Waits until an event says the file is whole, [`SAVE_BURST`] at
/// most, so a save by rename or a closed write is read at once.
fn rest_of_save(mut settled: bool, rx: &Receiver<Message>) -> Vec<Message> {
    let deadline = std::time::Instant::now() + SAVE_BURST;
    let mut other = Vec::new();
    loop {
        let next = match settled {
            true => rx.try_recv().ok(),
            false => rx
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .ok(),
        };
        match next {
            Some(Message::FilesChanged { settled: s }) => settled |= s,
            Some(m) => other.push(m),
            None => return other,
        }
    }
}

pub fn status_word(s: Status, lang: &str) -> String {
    match s {
        Status::Done => t!("watch.status_done", locale = lang),
        Status::Failing => t!("watch.status_failing", locale = lang),
        Status::NotTried => t!("watch.status_not_tried", locale = lang),
    }
    .into_owned()
}

/// Puts the terminal back however the session ends.
struct RawMode;

impl RawMode {
    fn enter() -> std::io::Result<RawMode> {
        terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(std::io::stdout(), cursor::Show);
    }
}

fn draw(text: &str, colour: bool) {
    let text = if colour {
        text.to_owned()
    } else {
        anstream::adapter::strip_str(text).to_string()
    };
    let mut out = std::io::stdout().lock();
    let _ = execute!(
        out,
        terminal::Clear(terminal::ClearType::All),
        cursor::MoveTo(0, 0)
    );
    // Raw mode: a line feed does not return the carriage.
    let _ = out.write_all(text.replace('\n', "\r\n").as_bytes());
    let _ = out.flush();
}

/// The course, filled from the cache, and a notice when its progress file
/// was damaged; an error when its lessons cannot be read.
fn open_course(setup: &Setup) -> anyhow::Result<(Course, Option<String>)> {
    let lang = setup.lang;
    let (mut course, damaged) = match Course::open(&setup.paths) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            anyhow::bail!("the lessons cannot be read");
        }
    };
    let environment =
        crate::exec::toolchain::environment(setup.engine.options(), setup.engine.isolated());
    course.fill_from_cache(&Keys::new(&environment, setup.cache.as_ref()));
    let notice = damaged.map(|d| {
        t!(
            "watch.progress_damaged",
            locale = lang,
            path = course.progress_path.display(),
            line = d.line
        )
        .into_owned()
    });
    let _ = course.save();
    Ok((course, notice))
}

/// Reads keys on a thread of its own until the session ends; the process
/// exit ends it.
fn read_keys(tx: Sender<Message>) {
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if let TermEvent::Key(k) = ev
                && tx.send(Message::Key(k)).is_err()
            {
                break;
            }
        }
    });
}

/// The file watcher (none with `manual_run`, or when it cannot start) and
/// the status line that says which.
fn start_watching(
    paths: &[PathBuf],
    manual_run: bool,
    lang: &'static str,
    tx: &Sender<Message>,
) -> (Option<notify::RecommendedWatcher>, String) {
    if manual_run {
        return (None, t!("watch.manual", locale = lang).into_owned());
    }
    match watch_files(paths, tx.clone()) {
        Ok(w) => (Some(w), t!("watch.watching", locale = lang).into_owned()),
        Err(e) => (
            None,
            t!("watch.watch_failed", locale = lang, error = e).into_owned(),
        ),
    }
}

/// Runs the interactive course until the student quits.
pub fn run(setup: Setup) -> anyhow::Result<()> {
    let lang = setup.lang;
    let (course, notice) = open_course(&setup)?;
    let (tx, rx) = channel::<Message>();
    let (requests, for_runner) = channel::<Request>();
    let Setup {
        paths,
        engine,
        cache,
        jobs,
        manual_run,
        ..
    } = setup;
    {
        let tx = tx.clone();
        // The engine lives on this thread for the whole session.
        std::thread::spawn(move || runner(engine, cache, jobs, lang, for_runner, tx));
    }
    read_keys(tx.clone());
    let (_watcher, watching) = start_watching(&paths, manual_run, lang, &tx);

    let current = course.current();
    let mut session = Session {
        course,
        current,
        mode: Mode::Exercise,
        shown: Shown::Nothing,
        hint: false,
        notice,
        watching,
        running: None,
        queued: None,
        requests,
        lang,
        unsaved: false,
    };
    if let Some(c) = session.current {
        session.course.set_current(c);
        let _ = session.course.save();
    }
    session.run_current();

    let colour = anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    let _raw = RawMode::enter()?;
    let _ = execute!(std::io::stdout(), cursor::Hide);
    draw(&session.screen(), colour);
    while let Ok(message) = rx.recv() {
        if !session.handle(message, &rx) {
            break;
        }
        draw(&session.screen(), colour);
        session.save_progress();
    }
    finish(session)
}

/// Stops what runs, keeps the progress, clears the screen.
fn finish(session: Session) -> anyhow::Result<()> {
    if let Some(cancel) = &session.running {
        cancel.cancel();
    }
    let _ = session.course.save();
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        terminal::Clear(terminal::ClearType::All),
        cursor::MoveTo(0, 0)
    );
    Ok(())
}

/// Whether `event` changes a lesson file, and if so whether it leaves the
/// file whole: a closed write, or a rename onto it. Reads and metadata are
/// not changes.
fn lesson_change(event: &notify::Event) -> Option<bool> {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
    let is_lesson = |p: &PathBuf| crate::lesson::has_lesson_extension(p);
    let settled = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        // A rename's destination is its last path.
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            return event.paths.last().filter(|p| is_lesson(p)).map(|_| true);
        }
        EventKind::Modify(ModifyKind::Metadata(_)) => return None,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => false,
        _ => return None,
    };
    event.paths.iter().any(is_lesson).then_some(settled)
}

/// Watches the folders of the course's lessons: a change to a `.md` file
/// (written, created, removed, renamed) sends a message. Reads are not
/// changes: aula reads the lessons itself after each change.
fn watch_files(
    paths: &[PathBuf],
    tx: Sender<Message>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if let Some(settled) = lesson_change(&event) {
            let _ = tx.send(Message::FilesChanged { settled });
        }
    })?;
    for p in paths {
        let dir = if p.is_dir() {
            p.clone()
        } else {
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), |d| d.to_path_buf())
        };
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |e, p| e.add_path(PathBuf::from(p)))
    }

    #[test]
    fn a_closed_write_or_a_rename_onto_a_lesson_leaves_it_whole() {
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let renamed = |mode| EventKind::Modify(ModifyKind::Name(mode));
        assert_eq!(lesson_change(&event(closed, &["l/01.md"])), Some(true));
        assert_eq!(
            lesson_change(&event(renamed(RenameMode::To), &["l/01.md"])),
            Some(true)
        );
        assert_eq!(
            lesson_change(&event(
                renamed(RenameMode::Both),
                &["l/.01.md.swp", "l/01.md"]
            )),
            Some(true)
        );
        // Half a save: truncated or written, created, or moved away (vim
        // renames the lesson to its backup before writing it anew).
        assert_eq!(lesson_change(&event(written, &["l/01.md"])), Some(false));
        let created = EventKind::Create(CreateKind::File);
        assert_eq!(lesson_change(&event(created, &["l/01.md"])), Some(false));
        assert_eq!(
            lesson_change(&event(renamed(RenameMode::From), &["l/01.md"])),
            Some(false)
        );
        assert_eq!(
            lesson_change(&event(renamed(RenameMode::Both), &["l/01.md", "l/01.md~"])),
            None
        );
        // Not lessons, or not changes.
        assert_eq!(lesson_change(&event(closed, &["l/notes.txt"])), None);
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(lesson_change(&event(read, &["l/01.md"])), None);
    }

    #[test]
    fn a_save_is_read_once_its_file_is_whole_keeping_what_came_between() {
        let (tx, rx) = channel::<Message>();
        let key = || Message::Key(KeyEvent::from(KeyCode::Char('h')));
        tx.send(Message::FilesChanged { settled: false }).unwrap();
        tx.send(key()).unwrap();
        tx.send(Message::FilesChanged { settled: true }).unwrap();
        // Sent well after the save's last event: not part of it. A wait
        // for the whole burst time would have taken it in.
        let late = {
            let tx = tx.clone();
            std::thread::spawn(move || {
                std::thread::sleep(SAVE_BURST * 5);
                tx.send(Message::Notice("late".into())).unwrap();
            })
        };
        let first = rx.recv().unwrap();
        assert!(matches!(first, Message::FilesChanged { settled: false }));
        let other = rest_of_save(false, &rx);
        assert_eq!(other.len(), 1);
        assert!(matches!(other[0], Message::Key(_)));
        late.join().unwrap();
        assert!(matches!(rx.try_recv(), Ok(Message::Notice(_))));
        // A save that never says it is whole ends at the burst's end.
        tx.send(Message::FilesChanged { settled: false }).unwrap();
        assert!(rest_of_save(false, &rx).is_empty());
        assert!(rx.try_recv().is_err());
    }
}
