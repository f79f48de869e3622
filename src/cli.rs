//! The command line: parses arguments, then hands each subcommand to the
//! library and turns what it returns into an exit status. Defaults live
//! here, once, in the argument definitions.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cache::Cache;
use crate::exec::netns::{self, Netns};
use crate::exec::sandbox::{self, Limits};
use crate::exec::{Cancel, Engine, Options, Scratch, Signals};
use crate::lesson::{self, Lesson, LessonError};
use crate::partition::Partition;
use crate::plan::{Keys, Plan};
use crate::report::{self, Reporters};

/// Exit statuses of REPORT-FORMAT.md.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_UNUSABLE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "aula",
    version,
    about = "Runs Rust lessons written in Markdown, like notebooks, and grades their server/client exercises"
)]
pub struct Cli {
    /// Without one, on a terminal: the interactive course (`aula watch`);
    /// in a pipe: what `aula run` prints.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run lessons: their plain cells, then their exercises, and check every output.
    Run(RunArgs),
    /// The interactive course: shows the exercise you are on and runs it
    /// again each time a lesson is saved.
    Watch(WatchArgs),
    /// Every lesson and exercise with its status and points.
    List(ListArgs),
    /// Combine the JSON reports of shards (`--partition`) into the report
    /// one unsharded run would have printed.
    Merge(MergeArgs),
    /// Write student copies: solution regions emptied to `todo!();`, hidden
    /// clients removed.
    Student(StudentArgs),
    /// Print the hint of an exercise.
    Hint(HintArgs),
    /// Write a lesson as a Jupyter notebook (Rust kernel), or a notebook as
    /// a Markdown lesson. Markdown → notebook → Markdown gives the same bytes.
    Convert(ConvertArgs),
    /// Run a lesson and write it as executed: every cell with what it
    /// printed, a verdict per cell and exercise, diffs and compiler errors
    /// under failures (hidden clients left out).
    Render(RenderArgs),
    /// Grade students' submissions against a reference lesson
    /// (GRADE-FORMAT.md): a gradebook and feedback for each student.
    Grade(GradeArgs),
}

#[derive(clap::Args, Debug)]
struct GradeArgs {
    /// The reference lesson, with solution regions (and hidden clients, hints).
    reference: PathBuf,
    /// Submissions: lesson files, folders holding one, or folders of those.
    #[arg(required = true)]
    submissions: Vec<PathBuf>,
    /// Folder for grades.csv, grades.json, feedback/ and the results log.
    #[arg(long, value_name = "DIR", default_value = "grades")]
    out: PathBuf,
    /// Keep the students the results log in DIR already holds; grade the rest.
    #[arg(long)]
    resume: bool,
    /// Report format on stdout (json: grades.json).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Grade even where the kernel cannot confine students' code (no
    /// Landlock): only for code you trust.
    #[arg(long)]
    unsandboxed: bool,
    /// Also write a JUnit XML report to this file: a suite per student, a
    /// case per check.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Grade one shard of the submissions (by student): `hash:M/N` or
    /// `slice:M/N`; `aula merge --grades` puts the shards together.
    #[arg(long, value_name = "KIND:M/N", value_parser = clap::value_parser!(Partition))]
    partition: Option<Partition>,
    /// A larger submission file is `invalid`, without being read: bytes,
    /// or with a K, M or G suffix (KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    max_submission_size: crate::grade::intake::ByteSize,
    #[command(flatten)]
    exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
struct StudentArgs {
    /// Lesson files, or folders of them.
    #[arg(default_value = "lessons")]
    paths: Vec<PathBuf>,
    /// Folder to write the copies to (file names are kept).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LessonFormat {
    Ipynb,
    Md,
}

#[derive(clap::Args, Debug)]
struct ConvertArgs {
    /// The lesson: a Markdown file or a notebook.
    lesson: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    to: LessonFormat,
    /// Where to write it (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RenderArgs {
    /// The lesson: a Markdown file or a notebook.
    lesson: PathBuf,
    /// The file to write: `.html` (one self-contained page) or `.md`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
struct HintArgs {
    /// The exercise's ID.
    id: String,
    /// Lesson files, or folders of them.
    #[arg(default_value = "lessons")]
    paths: Vec<PathBuf>,
}

/// Seconds between 0 and an hour, as a duration.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&value) {
        return Err(format!("{value} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// Like [`seconds`], but more than zero.
fn positive_seconds(text: &str) -> Result<Duration, String> {
    match seconds(text)? {
        d if d.is_zero() => Err("the limit must be more than 0 seconds".to_owned()),
        d => Ok(d),
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Lesson files, or folders of them (run in file-name order).
    #[arg(default_value = "lessons")]
    paths: Vec<PathBuf>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Run only this exercise (repeatable). Plain cells still run, since
    /// exercises see their items and variables.
    #[arg(long = "exercise", value_name = "ID")]
    exercises: Vec<String>,
    /// Also write a JUnit XML report to this file.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Rewrite the `output` blocks of cells that ran to their end and printed
    /// something else (for lesson authors); implies --no-cache.
    #[arg(long)]
    bless: bool,
    /// With --bless, also add an `output` block to cells that have none.
    #[arg(long, requires = "bless")]
    bless_new: bool,
    /// Run one shard of the units: `hash:M/N` or `slice:M/N`.
    #[arg(long, value_name = "KIND:M/N", value_parser = clap::value_parser!(Partition))]
    partition: Option<Partition>,
    /// `aula render`'s file: the executed lesson is written there.
    #[arg(skip)]
    render: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
}

impl RunArgs {
    /// `aula run PATHS` with these options and nothing else.
    fn human(paths: Vec<PathBuf>, exec: ExecArgs) -> RunArgs {
        RunArgs {
            paths,
            format: Format::Human,
            exercises: Vec::new(),
            junit: None,
            bless: false,
            bless_new: false,
            partition: None,
            render: None,
            exec,
        }
    }
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// JSON reports of the shards (`aula run --partition ... --format json`),
    /// or with --grades the output folders of `aula grade --partition`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Also write the merged JUnit XML report to this file.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Merge grading shards' folders (grades.json, feedback/) into --out.
    #[arg(long)]
    grades: bool,
    /// With --grades, the folder for the merged gradebook.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "grades",
        requires = "grades"
    )]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct WatchArgs {
    /// Lesson files, or folders of them (the course, in file-name order).
    #[arg(default_value = "lessons")]
    paths: Vec<PathBuf>,
    /// Do not watch the files (for file systems that send no events): `r`
    /// runs the exercise again.
    #[arg(long)]
    manual_run: bool,
    #[command(flatten)]
    exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Lesson files, or folders of them.
    #[arg(default_value = "lessons")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

/// How students' code is run: shared by `run` and `watch`.
#[derive(clap::Args, Debug)]
struct ExecArgs {
    /// Most bytes a cell may write to stdout before it is stopped.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    output_cap: u64,
    /// Seconds a server has to end by itself after its last client.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    grace: Duration,
    /// Wall-clock limit of a plain cell, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_seconds)]
    cell_timeout: Duration,
    /// Seconds the compiler may spend on a cell before it is stopped and the
    /// cell gets `timeout` (default 300; in `aula grade`, 60).
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    compile_timeout: Option<Duration>,
    /// Optimisation level of students' code (rustc -C opt-level).
    #[arg(long, value_name = "LEVEL", default_value = "0",
          value_parser = ["0", "1", "2", "3", "s", "z"])]
    opt_level: String,
    /// Run students' code in a private network namespace with only loopback
    /// up (where user namespaces are available; otherwise a warning, and the
    /// run goes on without).
    #[arg(long)]
    isolate: bool,
    /// Run everything, neither reading nor writing the result cache.
    #[arg(long)]
    no_cache: bool,
    /// How many exercises run at once (default: half the cores, at least 1;
    /// each exercise compiles a server and a client side by side).
    #[arg(long, short = 'j', value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    jobs: Option<u16>,
    /// Address space of each process running students' code, in MiB (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    max_memory: u64,
    /// Largest file students' code may write, in MiB (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    max_file_size: u64,
    /// Most processes of the user while students' code runs (0: no limit;
    /// default 4096). Linux counts all of the user's processes, and does not
    /// enforce it for root. In `aula grade`, also the most processes and
    /// threads of each cell's program, held by a pids cgroup (default 128).
    #[arg(long, value_name = "N")]
    max_processes: Option<u64>,
    /// Put a relay between each exercise's clients and its server that
    /// records the bytes of every connection (TCP and UDP), and show them
    /// under a failing exercise. Clients get the relay's port. Implies
    /// --no-cache.
    #[arg(long)]
    trace: bool,
}

impl ExecArgs {
    /// The options as they are when no flag is given.
    fn try_parse_defaults() -> ExecArgs {
        match Cli::try_parse_from(["aula", "run"]).map(|c| c.command) {
            Ok(Some(Command::Run(args))) => args.exec,
            _ => unreachable!("`aula run` parses"),
        }
    }

    fn options(&self) -> Options {
        let mib = |n: u64| (n > 0).then_some(n << 20);
        Options {
            output_cap: self.output_cap as usize,
            grace: self.grace,
            cell_timeout: self.cell_timeout,
            compile_limit: self.compile_timeout.unwrap_or(crate::exec::COMPILE_LIMIT),
            host: "127.0.0.1".to_owned(),
            limits: Limits {
                address_space: mib(self.max_memory),
                file_size: mib(self.max_file_size),
                processes: Some(self.max_processes.unwrap_or(4096)).filter(|&n| n > 0),
            },
            opt_level: self.opt_level.clone(),
            trace: self.trace,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Human,
    Json,
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_UNUSABLE)
}

fn lesson_errors(errors: &[LessonError]) -> ExitCode {
    for e in errors {
        eprintln!("error: {e}");
    }
    ExitCode::from(EXIT_UNUSABLE)
}

pub fn main() -> ExitCode {
    if std::env::var_os(netns::HOLDER_ENV).is_some() {
        netns::holder_main();
    }
    if let Ok(settings) = std::env::var(crate::exec::relay::RELAY_ENV) {
        crate::exec::relay::relay_main(&settings);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_UNUSABLE
            } else {
                EXIT_PASS
            });
        }
    };
    match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Watch(args)) => watch(args),
        Some(Command::List(args)) => list(args),
        Some(Command::Merge(args)) => merge(args),
        Some(Command::Student(args)) => student(args),
        Some(Command::Hint(args)) => hint(args),
        Some(Command::Convert(args)) => convert(args),
        Some(Command::Render(args)) => render(args),
        Some(Command::Grade(args)) => grade(args),
        None => match Cli::try_parse_from(["aula", "watch"]).map(|c| c.command) {
            Ok(Some(Command::Watch(args))) => watch(args),
            _ => unreachable!("`aula watch` parses"),
        },
    }
}

/// Lessons with Python peer cells need `python3`: said before anything
/// runs, naming each such cell.
fn require_python(lessons: &[Lesson]) -> Result<(), ExitCode> {
    let cells: Vec<LessonError> = lessons
        .iter()
        .flat_map(|l| l.cells.iter())
        .filter(|c| c.lang == lesson::Lang::Python)
        .map(|c| LessonError {
            path: c.origin.path().to_path_buf(),
            line: Some(c.line()),
            cell: c.origin.source.notebook.as_ref().map(|m| m.place(c.line())),
            message: format!(
                "this cell runs with `{}`, which is not installed here (or not on PATH)",
                crate::exec::peer::PYTHON
            ),
        })
        .collect();
    if cells.is_empty() || crate::exec::peer::python_available() {
        Ok(())
    } else {
        Err(lesson_errors(&cells))
    }
}

/// Stops a run before anything compiles when a plain cell keeps a variable
/// whose type rust-analyzer must infer and the standard library's source it
/// infers it from is not installed: evcxr would only say it "couldn't
/// automatically determine" the type, which names no fix.
fn require_std_source(lessons: &[Lesson]) -> Result<(), ExitCode> {
    use crate::exec::analysis;
    let untyped = analysis::untyped_variables(lessons);
    if untyped.is_empty() || analysis::std_source_found() {
        return Ok(());
    }
    let lang = crate::i18n::from_env();
    for u in &untyped {
        eprintln!(
            "{}",
            rust_i18n::t!(
                "run.std_source_missing",
                locale = lang,
                at = u.at,
                var = u.variable
            )
        );
    }
    Err(ExitCode::from(EXIT_UNUSABLE))
}

fn convert(args: ConvertArgs) -> ExitCode {
    // A file converts as it is, a whole lesson or not (a submission, a
    // lesson being written): only what it holds is carried over.
    let text = match lesson::read_text(&args.lesson) {
        Ok(t) => t,
        Err(e) => return lesson_errors(&[e]),
    };
    let markdown = if lesson::notebook::is_notebook(&args.lesson) {
        match lesson::notebook::to_markdown(&args.lesson, &text) {
            Ok((md, _)) => md,
            Err(errors) => return lesson_errors(&errors),
        }
    } else {
        text
    };
    let out = match args.to {
        LessonFormat::Md => markdown,
        LessonFormat::Ipynb => {
            lesson::notebook::from_markdown(&markdown, &lesson::blocks_of(&args.lesson, &markdown))
        }
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = crate::fs::write_atomically(path, &out) {
                return usage_error(format!("{}: {e}", path.display()));
            }
        }
        None => print!("{out}"),
    }
    ExitCode::from(EXIT_PASS)
}

fn student(args: StudentArgs) -> ExitCode {
    let lessons = match lesson::load_all(&args.paths) {
        Ok(l) => l,
        Err(errors) => return lesson_errors(&errors),
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return usage_error(format!("{}: {e}", args.out.display()));
    }
    for l in &lessons {
        let name = l.path.file_name().unwrap_or_default();
        let target = args.out.join(name);
        if let Err(e) = lesson::save(&target, &lesson::student::copy(l)) {
            return usage_error(format!("{}: {e}", target.display()));
        }
        println!("{} -> {}", l.path.display(), target.display());
    }
    ExitCode::from(EXIT_PASS)
}

fn hint(args: HintArgs) -> ExitCode {
    let lessons = match lesson::load_all(&args.paths) {
        Ok(l) => l,
        Err(errors) => return lesson_errors(&errors),
    };
    let found = lessons.iter().find_map(|l| l.exercise(&args.id));
    match found {
        Some(ex) => match &ex.hint {
            Some(h) => {
                println!("{h}");
                ExitCode::from(EXIT_PASS)
            }
            None => usage_error(format!("exercise `{}` has no hint", args.id)),
        },
        None => unknown_exercise(&args.id, &lessons),
    }
}

fn unknown_exercise(id: &str, lessons: &[Lesson]) -> ExitCode {
    let known: Vec<&str> = lessons
        .iter()
        .flat_map(|l| l.exercises.iter().map(|e| e.id.as_str()))
        .collect();
    let hint = lesson::suggest(id, &known)
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    usage_error(format!("no exercise `{id}` in the lessons given{hint}"))
}

fn run(args: RunArgs) -> ExitCode {
    let lessons = match lesson::load_all(&args.paths) {
        Ok(l) => l,
        Err(errors) => return lesson_errors(&errors),
    };
    if let Err(code) = require_python(&lessons) {
        return code;
    }
    for id in &args.exercises {
        if !lessons.iter().any(|l| l.exercise(id).is_some()) {
            return unknown_exercise(id, &lessons);
        }
    }
    // Shards of one run agree on this: the lessons as given, the options
    // and the selection.
    let inputs = crate::plan::inputs(
        &lessons,
        &format!(
            "{:?}\nisolate: {}\nexercises: {:?}",
            args.exec.options(),
            args.exec.isolate,
            args.exercises
        ),
    );
    let chosen = |_: &Lesson, ex: &lesson::Exercise| {
        args.exercises.is_empty() || args.exercises.contains(&ex.id)
    };
    // With --exercise, lessons without a chosen exercise are not run at all.
    let lessons: Vec<Lesson> = lessons
        .into_iter()
        .filter(|l| l.exercises.iter().any(|e| chosen(l, e)) || args.exercises.is_empty())
        .collect();
    // The units of the whole run, then this shard's: a shard runs what its
    // units need (plain cells included) and reports only its own.
    let all_units = crate::plan::units(&lessons, &chosen);
    let units: Vec<String> = match args.partition {
        Some(p) => all_units
            .iter()
            .zip(p.select(&all_units))
            .filter(|(_, keep)| *keep)
            .map(|(u, _)| u.clone())
            .collect(),
        None => all_units.clone(),
    };
    let selected =
        |l: &Lesson, ex: &lesson::Exercise| units.contains(&crate::plan::exercise_name(l, ex));
    let lessons: Vec<Lesson> = lessons
        .into_iter()
        .filter(|l| {
            args.partition.is_none()
                || units.contains(&crate::plan::plain_name(l))
                || l.exercises.iter().any(|e| selected(l, e))
        })
        .collect();

    if let Err(code) = require_std_source(&lessons) {
        return code;
    }
    let std_types = crate::exec::analysis::needs_std_types(&lessons);
    let (engine, cache, jobs) = match args.exec.start(std_types) {
        Ok(started) => started,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    // Blessing and rendering need what each cell printed, which the cache
    // does not keep.
    let cache = cache.filter(|_| !args.bless && args.render.is_none());
    let cancel = Cancel::new();
    let _signals = Signals::watch(&cancel);
    let environment = crate::exec::toolchain::environment(engine.options(), engine.isolated());
    let run_info = report::json::RunInfo {
        aula: env!("CARGO_PKG_VERSION").to_owned(),
        inputs,
        lessons: lessons
            .iter()
            .map(|l| l.path.display().to_string())
            .collect(),
        partition: args.partition.map(|p| p.to_string()),
        all_units: all_units.clone(),
        units: units.clone(),
    };
    let keys = Keys::new(&environment, cache.as_ref());
    let mut plan = Plan::new(&lessons, &selected, &keys);
    for lp in &mut plan.lessons {
        lp.report_plain =
            args.partition.is_none() || units.contains(&crate::plan::plain_name(lp.lesson));
    }
    // Started now, they warm up while the first cells are prepared; none
    // when the cache has everything.
    engine.warm(plan.contexts_needed(jobs));

    let mut reporters = Reporters::default();
    let json_format = args.format == Format::Json;
    match args.format {
        Format::Human => reporters.0.push(Box::new(report::human::Human::stdout())),
        Format::Json => {}
    }
    let junit_path = args.junit.clone();
    reporters.0.push(Box::new(report::json::Json::new(
        Some(run_info),
        move |value: &serde_json::Value| finish_report(value, json_format, junit_path.as_deref()),
    )));
    let finished = crate::run::execute(&engine, &plan, &keys, jobs, &cancel, &mut reporters);
    let host = engine.options().host.clone();
    drop(engine);
    if args.bless && finished.signal.is_none() {
        bless(&lessons, &finished, &host, args.bless_new);
    }
    if let Some(out) = &args.render
        && finished.signal.is_none()
        && let Some((lesson, result)) = lessons.first().zip(finished.results.first())
    {
        let lang = crate::i18n::from_env();
        let page = match out.extension().and_then(|e| e.to_str()) {
            Some("md") => report::render::markdown(lesson, result, lang),
            _ => report::render::html(lesson, result, lang),
        };
        if let Err(e) = crate::fs::write_atomically(out, &page) {
            return usage_error(format!("{}: {e}", out.display()));
        }
        eprintln!("{}", out.display());
    }
    if let Some(signal) = finished.signal {
        let lang = crate::i18n::from_env();
        eprintln!(
            "{}",
            rust_i18n::t!("human.stopped", locale = lang, signal = signal)
        );
        return ExitCode::from(Signals::exit_status(signal));
    }
    ExitCode::from(if finished.all_passed() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    })
}

/// Where a finished report goes: stdout as JSON (`--format json`), JUnit
/// (`--junit`), and GitHub's annotations and step summary.
fn finish_report(value: &serde_json::Value, print_json: bool, junit: Option<&std::path::Path>) {
    if print_json {
        report::json::print(&mut std::io::stdout().lock(), value);
    }
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, report::ci::junit(value))
    {
        eprintln!("error: {}: {e}", path.display());
    }
    // Annotations go where they cannot spoil a JSON report on stdout.
    if print_json {
        let annotations = std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true");
        if annotations {
            eprint!("{}", report::ci::annotations(value));
        }
        report::ci::github_summary(value);
    } else {
        report::ci::github(value);
    }
}

/// Writes blessed lessons back, saying which cells changed.
fn bless(lessons: &[Lesson], finished: &crate::outcome::Finished, host: &str, add_missing: bool) {
    for result in &finished.results {
        let Some(lesson) = lessons.iter().find(|l| l.path == result.path) else {
            continue;
        };
        let Some(blessed) = crate::bless::lesson(lesson, result, host, add_missing) else {
            continue;
        };
        match lesson::save(&lesson.path, &blessed.text) {
            Ok(()) => {
                for line in blessed.cells {
                    eprintln!("blessed the output of {}:{line}", lesson.path.display());
                }
            }
            Err(e) => eprintln!("error: {}: {e}", lesson.path.display()),
        }
    }
}

fn merge(args: MergeArgs) -> ExitCode {
    if args.grades {
        return merge_grades(&args);
    }
    let mut reports = Vec::new();
    for path in &args.reports {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(v) => reports.push(v),
            Err(e) => return usage_error(format!("{}: {e}", path.display())),
        }
    }
    match crate::merge::reports(&reports) {
        Ok(merged) => {
            finish_report(&merged, true, args.junit.as_deref());
            let passed = merged["summary"]["failed"] == 0 && crate::merge::cells_passed(&merged);
            ExitCode::from(if passed { EXIT_PASS } else { EXIT_FAIL })
        }
        Err(e) => usage_error(e),
    }
}

fn merge_grades(args: &MergeArgs) -> ExitCode {
    let (book, grades) = match crate::grade::output::merge(&args.reports, &args.out) {
        Ok(merged) => merged,
        Err(e) => return usage_error(e),
    };
    if let Some(path) = &args.junit {
        let value: serde_json::Value =
            serde_json::from_str(&crate::grade::output::json(&book, &grades)).unwrap_or_default();
        if let Err(e) = std::fs::write(path, report::ci::grades_junit(&value)) {
            return usage_error(format!("{}: {e}", path.display()));
        }
    }
    let lang = crate::i18n::from_env();
    print!(
        "{}",
        crate::grade::human::table(&book.exercises, &grades, lang)
    );
    let runner_failed = grades.iter().any(|g| g.status == "error");
    ExitCode::from(if runner_failed { EXIT_FAIL } else { EXIT_PASS })
}

impl ExecArgs {
    /// An engine for these options, the cache, and how many jobs. Call it
    /// before any thread starts: it points TMPDIR into the run's scratch
    /// folder.
    /// `std_types`: whether some plain cell keeps a variable, so evcxr's
    /// rust-analyzer needs the standard library (see `exec::analysis`).
    fn start(&self, std_types: bool) -> anyhow::Result<(Engine, Option<Cache>, usize)> {
        self.start_with(
            if self.isolate { 1 } else { 0 },
            None,
            StdTypes::Fixed(std_types),
        )
    }

    /// Like [`ExecArgs::start`], with `namespaces` private networks (lanes;
    /// 0: not isolated), and confined for grading.
    fn start_with(
        &self,
        namespaces: usize,
        confinement: Option<crate::exec::confine::Confinement>,
        std_types: StdTypes,
    ) -> anyhow::Result<(Engine, Option<Cache>, usize)> {
        let cache = if self.no_cache || self.trace {
            None
        } else {
            Cache::default_dir().map(Cache::at)
        };
        let jobs = self.jobs.map_or_else(default_jobs, usize::from);
        let scratch = Scratch::create()?;
        // SAFETY: no other thread exists yet. evcxr makes its build folders
        // under TMPDIR; inside the scratch folder, a run killed outright
        // leaves them where the next run's clean-up removes them.
        unsafe { std::env::set_var("TMPDIR", scratch.tmp()) };
        let mut std_link = None;
        match std_types {
            StdTypes::Fixed(true) => {}
            StdTypes::Fixed(false) => {
                let empty = crate::exec::analysis::empty_std(scratch.path())?;
                // SAFETY: as above, no other thread exists yet.
                unsafe { std::env::set_var("RUST_SRC_PATH", empty) };
            }
            StdTypes::Switchable(now) => {
                let link = crate::exec::analysis::StdLink::create(scratch.path(), now)?;
                // SAFETY: as above, no other thread exists yet.
                unsafe { std::env::set_var("RUST_SRC_PATH", link.path()) };
                std_link = Some(link);
            }
        }
        sandbox::become_subreaper();
        let mut netns = Vec::new();
        for _ in 0..namespaces {
            match Netns::create() {
                Ok(ns) => netns.push(std::sync::Arc::new(ns)),
                // Grading fails closed: no network of its own, no batch.
                Err(e) if confinement.is_some() => {
                    anyhow::bail!(
                        "a network namespace for students' code cannot be made: {e:#}; --unsandboxed grades anyway, trusting the code"
                    )
                }
                Err(e) => {
                    eprintln!("warning: --isolate: {e:#}; running without network isolation");
                    netns.clear();
                    break;
                }
            }
        }
        // Grading builds its own: nothing a student's earlier, unconfined
        // `aula run` could have written is linked into the graded code.
        let runtime_cache = match confinement {
            Some(_) => None,
            None => Cache::default_dir().map(|d| d.join("runtime")),
        };
        let mut engine = Engine::new(self.options(), scratch, netns, confinement, runtime_cache)?;
        if let Some(link) = std_link {
            engine.set_std_link(link);
        }
        Ok((engine, cache, jobs))
    }
}

/// What rust-analyzer loads of the standard library (see `exec::analysis`).
enum StdTypes {
    /// All of it, or nothing, for the whole run.
    Fixed(bool),
    /// Nothing or all of it now, all of it once a lesson needs it.
    Switchable(bool),
}

fn watch(args: WatchArgs) -> ExitCode {
    use std::io::IsTerminal as _;
    // Without a terminal there is nobody to press keys: print what `aula
    // run` prints.
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return run(RunArgs::human(args.paths, args.exec));
    }
    // Lessons can gain a plain cell that keeps a variable at any save: the
    // engine can move rust-analyzer to the real standard library then.
    let std_types = lesson::load_all(&args.paths).map_or(true, |lessons| {
        crate::exec::analysis::needs_std_types(&lessons)
    });
    let (engine, cache, jobs) = match args.exec.start_with(
        if args.exec.isolate { 1 } else { 0 },
        None,
        StdTypes::Switchable(std_types),
    ) {
        Ok(started) => started,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    let setup = crate::course::watch::Setup {
        paths: args.paths,
        engine,
        cache,
        jobs,
        manual_run: args.manual_run,
        lang: crate::i18n::from_env(),
    };
    match crate::course::watch::run(setup) {
        Ok(()) => ExitCode::from(EXIT_PASS),
        Err(e) => usage_error(format!("{e:#}")),
    }
}

fn list(args: ListArgs) -> ExitCode {
    let (mut course, _) = match crate::course::Course::open(&args.paths) {
        Ok(c) => c,
        Err(errors) => return lesson_errors(&errors),
    };
    // What already ran for the lessons as they are now fills what the
    // progress file does not say.
    if let Some(cache) = Cache::default_dir().map(Cache::at) {
        let options = ExecArgs::try_parse_defaults().options();
        let environment = crate::exec::toolchain::environment(&options, false);
        course.fill_from_cache(&Keys::new(&environment, Some(&cache)));
    }
    let lang = crate::i18n::from_env();
    match args.format {
        Format::Json => {
            let lessons: Vec<serde_json::Value> = course
                .lessons
                .iter()
                .enumerate()
                .map(|(li, l)| {
                    let exercises: Vec<serde_json::Value> = course
                        .entries
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| e.lesson == li)
                        .map(|(i, e)| {
                            let ex = course.exercise_of(i);
                            serde_json::json!({
                                "id": ex.id,
                                "name": e.name,
                                "line": ex.line,
                                "status": course.status(i).as_str(),
                                "points": ex.points,
                            })
                        })
                        .collect();
                    serde_json::json!({ "path": l.path.display().to_string(), "exercises": exercises })
                })
                .collect();
            let report = serde_json::json!({
                "lessons": lessons,
                "current": course.current().map(|i| course.entries[i].name.clone()),
                "summary": { "exercises": course.entries.len(), "done": course.done() },
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
        }
        Format::Human => {
            let current = course.current();
            for (li, l) in course.lessons.iter().enumerate() {
                println!("{}", l.path.display());
                for (i, e) in course
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.lesson == li)
                {
                    let ex = course.exercise_of(i);
                    let mark = if Some(i) == current { ">" } else { " " };
                    let status = crate::course::watch::status_word(course.status(i), lang);
                    let points = rust_i18n::t!("list.points", locale = lang, n = ex.points);
                    println!("{mark} {status:<12} {:<28} {points}", ex.id);
                    let _ = e;
                }
            }
            let done = rust_i18n::t!(
                "watch.progress",
                locale = lang,
                done = course.done(),
                total = course.entries.len()
            );
            println!("\n{done}");
        }
    }
    ExitCode::from(EXIT_PASS)
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn grade(mut args: GradeArgs) -> ExitCode {
    use crate::exec::confine::Confinement;
    use crate::grade::{self, output};

    let lang = crate::i18n::from_env();
    // Students' code can keep a compiler busy on purpose (GRADE-FORMAT 1.1).
    args.exec
        .compile_timeout
        .get_or_insert(crate::grade::COMPILE_LIMIT);
    let reference = match lesson::load(&args.reference) {
        Ok(l) => l,
        Err(errors) => return lesson_errors(&errors),
    };
    if let Err(code) = require_python(std::slice::from_ref(&reference)) {
        return code;
    }
    if let Err(code) = require_std_source(std::slice::from_ref(&reference)) {
        return code;
    }
    if args.exec.trace {
        // What went over the wire would show what hidden clients send.
        return usage_error("--trace is for `aula run`, not for grading");
    }
    if grade::graded_exercises(&reference).is_empty() {
        return usage_error(format!(
            "{}: no exercise has a solution region, so there is nothing to grade",
            reference.path.display()
        ));
    }
    let subs = match grade::submission::discover(&args.submissions, &reference.path) {
        Ok(s) => s,
        Err(e) => return usage_error(e.say(lang)),
    };
    // Every layer of the sandbox or none (GRADE-FORMAT 1.1: fail closed).
    let confinement = if args.unsandboxed {
        eprintln!("{}", rust_i18n::t!("grade.unsandboxed", locale = lang));
        None
    } else {
        let max_tasks = args.exec.max_processes.unwrap_or(128).max(16);
        let max_memory = (args.exec.max_memory > 0).then_some(args.exec.max_memory << 20);
        match Confinement::for_grading(max_tasks, max_memory) {
            Ok(c) => Some(c),
            Err(missing) => {
                return usage_error(rust_i18n::t!(
                    "grade.sandbox_missing",
                    locale = lang,
                    layer = missing.layer,
                    why = missing.why
                ));
            }
        }
    };
    let inputs = crate::plan::inputs(
        std::slice::from_ref(&reference),
        &format!(
            "{:?}\nunsandboxed: {}\nmax submission size: {}",
            args.exec.options(),
            args.unsandboxed,
            args.max_submission_size.0
        ),
    );
    let all_students: Vec<String> = subs.iter().map(|s| s.student.clone()).collect();
    let subs: Vec<grade::submission::Submission> = match args.partition {
        Some(p) => subs
            .into_iter()
            .zip(p.select(&all_students))
            .filter(|(_, keep)| *keep)
            .map(|(s, _)| s)
            .collect(),
        None => subs,
    };
    let book = output::Gradebook::of(
        &reference,
        output::BatchInfo {
            aula: env!("CARGO_PKG_VERSION").to_owned(),
            inputs: inputs.clone(),
            partition: args.partition.map(|p| p.to_string()),
            all_students,
        },
    );
    let header = output::LogHeader {
        aula: env!("CARGO_PKG_VERSION").to_owned(),
        reference: reference.path.display().to_string(),
        inputs,
        partition: args.partition.map(|p| p.to_string()),
    };
    let (mut log, kept) = match output::Log::open(&args.out, &header, args.resume) {
        Ok(opened) => opened,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    let kept: Vec<grade::Graded> = kept
        .into_iter()
        .filter(|g| {
            subs.iter().any(|s| {
                s.student == g.grade.student && s.path.display().to_string() == g.grade.path
            })
        })
        .collect();
    let rest: Vec<grade::submission::Submission> = subs
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
    // A network namespace per worker: submissions graded at the same time
    // never share a loopback.
    let lanes = if args.unsandboxed {
        0
    } else {
        args.exec.jobs.map_or_else(default_jobs, usize::from)
    };
    // Watched from before the contexts start compiling in the background.
    let cancel = Cancel::new();
    let _signals = Signals::watch(&cancel);
    // Students' sides are exercise cells: only the reference's plain cells
    // can keep variables.
    let std_types = crate::exec::analysis::needs_std_types([&reference]);
    let (engine, _, jobs) =
        match args
            .exec
            .start_with(lanes, confinement, StdTypes::Fixed(std_types))
        {
            Ok(started) => started,
            Err(e) => return usage_error(format!("{e:#}")),
        };
    // Whatever the batch is waiting for when a signal comes, it ends within
    // seconds (GRADE-FORMAT 1.1: Ctrl-C always stops it). Armed once the
    // environment is set: it is a thread.
    let _overdue = crate::exec::Overdue::arm(
        &cancel,
        std::time::Duration::from_secs(5),
        rust_i18n::t!(
            "grade.interrupted_waiting",
            locale = lang,
            log = args.out.join(output::LOG).display()
        )
        .into_owned(),
    );
    let begun = std::time::Instant::now();
    let mut graded = kept;
    if !rest.is_empty() {
        // Lane 0 also runs the reference's plain cells.
        for lane in 0..jobs.min(rest.len()) {
            engine.warm_lane(lane, if lane == 0 { 3 } else { 2 });
        }
        let keys = Keys::new(&crate::plan::Environment::default(), None);
        let plain = crate::run::plain(&engine, &reference, &keys, &cancel);
        let replay = crate::plan::replay_of(&plain);
        // Every cell of a graded exercise that is the reference's in some
        // check: compiled once here, not once per student.
        let halves: Vec<usize> = grade::graded_exercises(&reference)
            .iter()
            .flat_map(|(i, _)| reference.exercises[*i].cells())
            .filter(|&c| reference.cell(c).lang == crate::lesson::Lang::Rust)
            .collect();
        let (natives, _) = crate::exec::native::Natives::build(
            &reference,
            &halves,
            &replay,
            &engine.natives_dir(),
            &engine.options().opt_level,
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
        let batch = grade::Batch {
            reference: &reference,
            engine: &engine,
            replay,
            natives,
            lang,
            max_submission: args.max_submission_size,
        };
        if let Some(failed) = batch.check_reference(&cancel)
            && !failed.is_empty()
        {
            return usage_error(rust_i18n::t!(
                "grade.reference_fails",
                locale = lang,
                reference = reference.path.display(),
                checks = failed.join("\n  ")
            ));
        }
        let progress = grade::human::Progress::new(rest.len(), lang);
        let mut log_failed = None;
        let new = grade::run_all(&batch, &rest, jobs, &cancel, &mut |g| {
            progress.done(g);
            if let Err(e) = log.append(g) {
                log_failed.get_or_insert(e);
            }
        });
        progress.finish();
        if let Some(e) = log_failed {
            eprintln!("error: writing the results log: {e:#}");
        }
        graded.extend(new);
    }
    drop(engine);
    if let Some(signal) = cancel.signal() {
        eprintln!(
            "{}",
            rust_i18n::t!(
                "grade.interrupted",
                locale = lang,
                n = graded.len(),
                log = args.out.join(output::LOG).display()
            )
        );
        return ExitCode::from(Signals::exit_status(signal));
    }
    graded.sort_by(|a, b| a.grade.student.cmp(&b.grade.student));
    let written = match output::write_all(&args.out, &book, &graded) {
        Ok(w) => w,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    let grades: Vec<grade::StudentGrade> = graded.iter().map(|g| g.grade.clone()).collect();
    if let Some(path) = &args.junit {
        let value: serde_json::Value =
            serde_json::from_str(&output::json(&book, &grades)).unwrap_or_default();
        if let Err(e) = std::fs::write(path, report::ci::grades_junit(&value)) {
            eprintln!("error: {}: {e}", path.display());
        }
    }
    match args.format {
        Format::Json => print!("{}", output::json(&book, &grades)),
        Format::Human => {
            print!("{}", grade::human::table(&book.exercises, &grades, lang));
            let max = book.max_score;
            println!(
                "\n{}",
                rust_i18n::t!(
                    "grade.summary",
                    locale = lang,
                    n = grades.len(),
                    mean = output::number(output::mean(&grades)),
                    max = max,
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
    }
    let runner_failed = grades.iter().any(|g| g.status == "error");
    ExitCode::from(if runner_failed { EXIT_FAIL } else { EXIT_PASS })
}

fn render(args: RenderArgs) -> ExitCode {
    let html = args.out.extension().is_some_and(|e| e == "html");
    let md = args.out.extension().is_some_and(|e| e == "md");
    if !html && !md {
        return usage_error(format!(
            "{}: the rendered lesson is an .html or a .md file",
            args.out.display()
        ));
    }
    if args.out == args.lesson {
        return usage_error("--out would overwrite the lesson itself");
    }
    run(RunArgs {
        render: Some(args.out),
        ..RunArgs::human(vec![args.lesson], args.exec)
    })
}
