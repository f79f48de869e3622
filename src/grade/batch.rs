//! A whole `aula grade` batch, from a loaded reference to what it wrote:
//! submissions found and sharded, the sandbox checked (failing closed), the
//! results log opened or resumed, the engine started on a lane per worker,
//! the reference's plain cells and halves run once, every student graded,
//! then the gradebook, feedback, JUnit and the report on stdout. `cli`
//! fills a [`Config`] from the arguments and turns the [`Ended`] into an
//! exit status.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::intake::ByteSize;
use super::submission::{self, Submission};
use super::{Batch, GradeStatus, Graded, StudentGrade, human, output};
use crate::exec::sandbox::confine::Confinement;
use crate::exec::{Cancel, Engine, Options, Overdue, Signals, StdTypes};
use crate::lesson::Lesson;
use crate::partition::Partition;
use crate::plan::Keys;

/// What a batch is asked to do (`aula grade`'s arguments, resolved).
pub struct Config {
    /// Lesson files, folders holding one, or folders of those.
    pub submissions: Vec<PathBuf>,
    /// The folder for grades.csv, grades.json, feedback/ and the log.
    pub out: PathBuf,
    /// Keep the students the results log already holds.
    pub resume: bool,
    /// grades.json on stdout, instead of the table.
    pub json: bool,
    /// Grade without the sandbox (trusted code only).
    pub unsandboxed: bool,
    /// Where to write a JUnit XML report too.
    pub junit: Option<PathBuf>,
    /// Where to write Gradescope's `results.json` (one student's batch).
    pub gradescope: Option<PathBuf>,
    /// A gradebook folder to compare this one with (`--compare`).
    pub compare: Option<PathBuf>,
    /// A Canvas export to fill (`--canvas`).
    pub canvas: Option<Canvas>,
    /// This shard of the students, by name.
    pub partition: Option<Partition>,
    /// A larger submission is `invalid`, unread.
    pub max_submission_size: ByteSize,
    /// How students' code runs (the compile limit already grading's).
    pub options: Options,
    /// `--max-processes`: the pids cgroup's limit per cell, when given.
    pub max_processes: Option<u64>,
    /// `--max-memory` in MiB (0: no limit).
    pub max_memory: u64,
    /// Students graded at once.
    pub jobs: usize,
    /// The language of messages and feedback.
    pub lang: &'static str,
}

/// `--canvas EXPORT --canvas-column NAME --roster FILE`.
pub struct Canvas {
    pub export: PathBuf,
    pub column: Option<String>,
    pub roster: Option<PathBuf>,
}

/// How a batch that could run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every student graded and written; `runner_failed`: the runner itself
    /// failed on some student (status `error`).
    Graded { runner_failed: bool },
    /// Stopped by this signal; the log keeps who was graded.
    Interrupted { signal: i32 },
}

/// Runs the batch of `config` against `reference`. `Err`: why it could not
/// run (or write), as one message.
pub fn grade(reference: &Lesson, config: &Config) -> Result<Ended, String> {
    let lang = config.lang;
    let subs =
        submission::discover(&config.submissions, &reference.path).map_err(|e| e.say(lang))?;
    let confinement = confinement(config)?;
    let inputs = crate::plan::inputs(
        std::slice::from_ref(reference),
        &format!(
            "{:?}\nunsandboxed: {}\nmax submission size: {}",
            config.options, config.unsandboxed, config.max_submission_size.0
        ),
    );
    let all_students: Vec<String> = subs.iter().map(|s| s.student.clone()).collect();
    let subs = Partition::shard(config.partition, subs, &all_students);
    let book = output::Gradebook::of(
        reference,
        output::BatchInfo {
            aula: env!("CARGO_PKG_VERSION").to_owned(),
            inputs: inputs.clone(),
            partition: config.partition.map(|p| p.to_string()),
            all_students,
        },
    );
    let header = output::LogHeader {
        aula: env!("CARGO_PKG_VERSION").to_owned(),
        reference: reference.path.display().to_string(),
        inputs,
        partition: config.partition.map(|p| p.to_string()),
    };
    // Read before the new log is opened: `--out` may be the old folder.
    let reuse = checks_to_reuse(config);
    let (mut log, kept) =
        output::Log::open(&config.out, &header, config.resume).map_err(|e| format!("{e:#}"))?;
    let (kept, rest) = resumed(kept, &subs, lang);
    // Watched from before the contexts start compiling in the background.
    let cancel = Cancel::new();
    let _signals = Signals::watch(&cancel);
    // A network namespace per worker: submissions graded at the same time
    // never share a loopback. Students' sides are exercise cells: only the
    // reference's plain cells can keep variables.
    let lanes = if config.unsandboxed { 0 } else { config.jobs };
    let std_types = crate::exec::evcxr::analysis::needs_std_types([reference]);
    let engine = Engine::builder(config.options.clone())
        .namespaces(lanes)
        .confinement(confinement)
        .std_types(StdTypes::Fixed(std_types))
        .start()
        .map_err(|e| format!("{e:#}"))?;
    // Whatever the batch is waiting for when a signal comes, it ends within
    // seconds (GRADE-FORMAT 1.1: Ctrl-C always stops it). Armed once the
    // environment is set: it is a thread.
    let log_path = config.out.join(output::LOG);
    let _overdue = Overdue::arm(
        &cancel,
        Duration::from_secs(5),
        rust_i18n::t!(
            "grade.interrupted_waiting",
            locale = lang,
            log = log_path.display()
        )
        .into_owned(),
    );
    let begun = Instant::now();
    let mut graded = kept;
    if !rest.is_empty() {
        graded.extend(grade_rest(
            reference, &engine, &rest, config, &cancel, &mut log, reuse,
        )?);
    }
    drop(engine);
    if let Some(signal) = cancel.signal() {
        let n = graded.len();
        let log = log_path.display();
        eprintln!(
            "{}",
            rust_i18n::t!("grade.interrupted", locale = lang, n = n, log = log)
        );
        return Ok(Ended::Interrupted { signal });
    }
    graded.sort_by(|a, b| a.grade.student.cmp(&b.grade.student));
    let written = output::write_all(&config.out, &book, &graded).map_err(|e| format!("{e:#}"))?;
    let grades: Vec<StudentGrade> = graded.iter().map(|g| g.grade.clone()).collect();
    report(config, &book, &grades, &written, begun);
    let runner_failed = grades.iter().any(|g| g.status == GradeStatus::Error);
    Ok(Ended::Graded { runner_failed })
}

/// Every layer of the sandbox or none (GRADE-FORMAT 1.1: fail closed);
/// `None` with --unsandboxed, after a warning.
fn confinement(config: &Config) -> Result<Option<Confinement>, String> {
    let lang = config.lang;
    if config.unsandboxed {
        eprintln!("{}", rust_i18n::t!("grade.unsandboxed", locale = lang));
        return Ok(None);
    }
    let max_tasks = config.max_processes.unwrap_or(128).max(16);
    let max_memory = (config.max_memory > 0).then_some(config.max_memory << 20);
    match Confinement::for_grading(max_tasks, max_memory) {
        Ok(c) => Ok(Some(c)),
        Err(missing) => Err(rust_i18n::t!(
            "grade.sandbox_missing",
            locale = lang,
            layer = missing.layer,
            why = missing.why
        )
        .into_owned()),
    }
}

/// With `--compare OLD_DIR`, the checks OLD_DIR's results log holds, which
/// this batch takes instead of running while their keys match. The key's
/// environment: everything of the batch's settings a verdict depends on,
/// and the toolchain.
fn checks_to_reuse(config: &Config) -> super::reuse::Reuse {
    let environment = format!(
        "{}\nunsandboxed: {}\nmax submission size: {}\nmax processes: {:?}\nmax memory: {}",
        crate::exec::toolchain::environment(&config.options, !config.unsandboxed),
        config.unsandboxed,
        config.max_submission_size.0,
        config.max_processes,
        config.max_memory,
    );
    let Some(old) = &config.compare else {
        return super::reuse::Reuse::new(environment);
    };
    let (reuse, unread) = super::reuse::Reuse::from_log(environment, old);
    if let Some(why) = unread {
        let lang = config.lang;
        eprintln!(
            "{}",
            rust_i18n::t!("compare.no_log", locale = lang, why = why)
        );
    }
    reuse
}

/// Of the students the log kept, those still submitted as they were; and
/// the submissions left to grade. Says so when some were kept.
fn resumed(kept: Vec<Graded>, subs: &[Submission], lang: &str) -> (Vec<Graded>, Vec<Submission>) {
    let kept: Vec<Graded> = kept
        .into_iter()
        .filter(|g| {
            subs.iter().any(|s| {
                s.student == g.grade.student && s.path.display().to_string() == g.grade.path
            })
        })
        .collect();
    let rest: Vec<Submission> = subs
        .iter()
        .filter(|s| !kept.iter().any(|g| g.grade.student == s.student))
        .cloned()
        .collect();
    if !kept.is_empty() {
        eprintln!(
            "{}",
            rust_i18n::t!(
                "grade.resumed",
                locale = lang,
                n = kept.len(),
                rest = rest.len()
            )
        );
    }
    (kept, rest)
}

/// Grades `rest` on the started engine: the reference's plain cells and
/// halves first, once, then the reference against its own checks, then
/// every student, each appended to the log as it finishes.
fn grade_rest(
    reference: &Lesson,
    engine: &Engine,
    rest: &[Submission],
    config: &Config,
    cancel: &Cancel,
    log: &mut output::Log,
    reuse: super::reuse::Reuse,
) -> Result<Vec<Graded>, String> {
    let (lang, jobs) = (config.lang, config.jobs);
    // Lane 0 also runs the reference's plain cells.
    for lane in 0..jobs.min(rest.len()) {
        engine.warm_lane(lane, if lane == 0 { 3 } else { 2 });
    }
    // The reference's crates, fetched and built before any student's code
    // runs, by the grader; students' `:dep` lines are never read.
    crate::run::prepare_crates(engine, std::slice::from_ref(reference)).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        text.join("\n")
    })?;
    let crates = engine
        .crates(&reference.crates)
        .map_err(|e| format!("{}: {e}", reference.path.display()))?;
    let keys = Keys::new(&crate::plan::Environment::default(), None);
    let plain = crate::run::plain(engine, reference, &keys, cancel);
    let replay = crate::plan::replay_of(&plain);
    // Every cell of a graded exercise that is the reference's in some
    // check: compiled once here, not once per student.
    let halves: Vec<usize> = super::graded_exercises(reference)
        .iter()
        .flat_map(|(i, _)| reference.exercises[*i].cells())
        .filter(|&c| reference.cell(c).lang == crate::lesson::Lang::Rust)
        .collect();
    let (natives, _) = crate::exec::native::Natives::build(
        reference,
        &halves,
        &replay,
        &engine.natives_dir(),
        &engine.options().opt_level,
        crates.as_deref(),
        jobs.max(2),
    );
    eprintln!(
        "{}",
        rust_i18n::t!(
            "grade.natives",
            locale = lang,
            n = natives.len(),
            total = halves.len()
        )
    );
    let batch = Batch {
        reference,
        engine,
        replay,
        natives,
        lang,
        max_submission: config.max_submission_size,
        reuse,
    };
    if let Some(failed) = batch.check_reference(cancel)
        && !failed.is_empty()
    {
        return Err(rust_i18n::t!(
            "grade.reference_fails",
            locale = lang,
            reference = reference.path.display(),
            checks = failed.join("\n  ")
        )
        .into_owned());
    }
    let progress = human::Progress::new(rest.len(), lang);
    let mut log_failed = None;
    let new = super::run_all(&batch, rest, jobs, cancel, &mut |g| {
        progress.done(g);
        if let Err(e) = log.append(g) {
            log_failed.get_or_insert(e);
        }
    });
    progress.finish();
    if batch.reuse.had_previous() {
        let (reused, ran) = batch.reuse.counts();
        eprintln!(
            "{}",
            rust_i18n::t!(
                "compare.reused",
                locale = lang,
                reused = reused,
                total = reused + ran
            )
        );
    }
    if let Some(e) = log_failed {
        eprintln!("error: writing the results log: {e:#}");
    }
    Ok(new)
}

/// `OUT/canvas.csv` from the export, and what to say of it.
fn canvas_filled(
    canvas: &Canvas,
    out: &std::path::Path,
    grades: &[StudentGrade],
    lang: &'static str,
) -> String {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let roster = match &canvas.roster {
        Some(path) => read(path).and_then(|t| super::canvas::roster(&t)),
        None => Ok(Default::default()),
    };
    let scores: Vec<(String, String)> = grades
        .iter()
        .map(|g| (g.student.clone(), output::number(g.score)))
        .collect();
    let path = out.join("canvas.csv");
    let filled = roster.and_then(|roster| {
        let export = read(&canvas.export)?;
        super::canvas::fill(&export, canvas.column.as_deref(), &roster, &scores)
    });
    match filled {
        Ok(f) => match crate::fs::write_atomically(&path, &f.csv) {
            Ok(()) => super::canvas::summary(&f, &path, lang),
            Err(e) => format!("error: {}: {e}", path.display()),
        },
        Err(e) => format!("error: --canvas: {e}"),
    }
}

/// The regrade's changes against the gradebook in `old`: written to
/// `OUT/changes.csv`, and the table to print (or why there is none).
fn compared(
    old: &std::path::Path,
    out: &std::path::Path,
    book: &output::Gradebook,
    grades: &[StudentGrade],
    lang: &'static str,
) -> String {
    let now: Result<super::compare::Book, String> =
        serde_json::from_str(&output::json(book, grades)).map_err(|e| e.to_string());
    let changes =
        match super::compare::read(old).and_then(|old| Ok(super::compare::changes(&old, &now?))) {
            Ok(changes) => changes,
            Err(e) => return format!("error: --compare: {e}\n"),
        };
    let path = out.join("changes.csv");
    if let Err(e) = crate::fs::write_atomically(&path, super::compare::csv(&changes)) {
        return format!("error: {}: {e}\n", path.display());
    }
    super::compare::table(&changes, old, lang)
}

/// The JUnit file (--junit) and the report on stdout: grades.json, or the
/// table with a summary and where the files went.
fn report(
    config: &Config,
    book: &output::Gradebook,
    grades: &[StudentGrade],
    written: &[PathBuf],
    begun: Instant,
) {
    let lang = config.lang;
    if let Some(path) = &config.junit
        && let Err(e) = std::fs::write(path, output::junit(grades))
    {
        eprintln!("error: {}: {e}", path.display());
    }
    match (&config.gradescope, grades) {
        (Some(path), [grade]) => {
            let results = super::gradescope::results(grade, begun.elapsed().as_secs_f64());
            let text = serde_json::to_string_pretty(&results).unwrap_or_default();
            if let Err(e) = crate::fs::write_atomically(path, text) {
                eprintln!("error: {}: {e}", path.display());
            }
        }
        (Some(path), _) => eprintln!(
            "error: {}: not written: --gradescope is one submission's results, and this batch has {}",
            path.display(),
            grades.len()
        ),
        (None, _) => {}
    }
    if let Some(canvas) = &config.canvas {
        eprintln!("{}", canvas_filled(canvas, &config.out, grades, lang));
    }
    let changes = config
        .compare
        .as_deref()
        .map(|old| compared(old, &config.out, book, grades, lang));
    if config.json {
        print!("{}", output::json(book, grades));
        if let Some(table) = changes {
            eprint!("{table}");
        }
        return;
    }
    if let Some(table) = changes {
        println!("{table}");
    }
    print!("{}", human::table(&book.exercises, grades, lang));
    println!(
        "\n{}",
        rust_i18n::t!(
            "grade.summary",
            locale = lang,
            n = grades.len(),
            mean = output::number(output::mean(grades)),
            max = book.max_score,
            secs = format!("{:.1}", begun.elapsed().as_secs_f64())
        )
    );
    println!(
        "{}",
        rust_i18n::t!(
            "grade.wrote",
            locale = lang,
            csv = written[0].display(),
            json = written[1].display(),
            n = grades.len(),
            feedback = written[2].display()
        )
    );
}

/// `aula merge --grades`: the shards' folders `dirs` merged into `out`,
/// the JUnit file (`junit`), and the table on stdout. `Ok`: whether the
/// runner failed on some student; `Err`: why they could not be merged or
/// written.
pub fn merge(
    dirs: &[PathBuf],
    out: &std::path::Path,
    junit: Option<&std::path::Path>,
    lang: &str,
) -> Result<bool, String> {
    let (book, grades) = output::merge(dirs, out)?;
    if let Some(path) = junit {
        std::fs::write(path, output::junit(&grades))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print!("{}", human::table(&book.exercises, &grades, lang));
    Ok(grades.iter().any(|g| g.status == GradeStatus::Error))
}
