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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run lessons: their plain cells, then their exercises, and check every output.
    Run(RunArgs),
    /// Write student copies: solution regions emptied to `todo!();`, hidden
    /// clients removed.
    Student(StudentArgs),
    /// Print the hint of an exercise.
    Hint(HintArgs),
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
    /// Most processes of the user while students' code runs (0: no limit).
    /// Linux counts all of the user's processes, and does not enforce it for root.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_processes: u64,
}

impl RunArgs {
    fn options(&self) -> Options {
        let mib = |n: u64| (n > 0).then_some(n << 20);
        Options {
            output_cap: self.output_cap as usize,
            grace: self.grace,
            cell_timeout: self.cell_timeout,
            host: "127.0.0.1".to_owned(),
            limits: Limits {
                address_space: mib(self.max_memory),
                file_size: mib(self.max_file_size),
                processes: (self.max_processes > 0).then_some(self.max_processes),
            },
            opt_level: self.opt_level.clone(),
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
        Command::Run(args) => run(args),
        Command::Student(args) => student(args),
        Command::Hint(args) => hint(args),
    }
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
        if let Err(e) = std::fs::write(&target, lesson::student::copy(l)) {
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
    for id in &args.exercises {
        if !lessons.iter().any(|l| l.exercise(id).is_some()) {
            return unknown_exercise(id, &lessons);
        }
    }
    let selected = |_: &Lesson, ex: &lesson::Exercise| {
        args.exercises.is_empty() || args.exercises.contains(&ex.id)
    };
    // With --exercise, lessons without a chosen exercise are not run at all.
    let lessons: Vec<Lesson> = lessons
        .into_iter()
        .filter(|l| l.exercises.iter().any(|e| selected(l, e)) || args.exercises.is_empty())
        .collect();
    let cache = if args.no_cache {
        None
    } else {
        Cache::default_dir().map(Cache::at)
    };
    let jobs = args.jobs.map_or_else(default_jobs, usize::from);

    let scratch = match Scratch::create() {
        Ok(s) => s,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    // SAFETY: no other thread exists yet. evcxr makes its build folders
    // under TMPDIR; inside the scratch folder, a run killed outright leaves
    // them where the next run's clean-up removes them.
    unsafe { std::env::set_var("TMPDIR", scratch.tmp()) };
    sandbox::become_subreaper();
    let cancel = Cancel::new();
    let _signals = Signals::watch(&cancel);
    let netns = if args.isolate {
        match Netns::create() {
            Ok(ns) => Some(std::sync::Arc::new(ns)),
            Err(e) => {
                eprintln!("warning: --isolate: {e:#}; running without network isolation");
                None
            }
        }
    } else {
        None
    };
    let options = args.options();
    let engine = match Engine::new(options, scratch, netns) {
        Ok(e) => e,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    let keys = Keys::new(
        crate::plan::environment(engine.options(), engine.isolated()),
        cache.as_ref(),
    );
    let plan = Plan::new(&lessons, &selected, &keys);
    // Started now, they warm up while the first cells are prepared; none
    // when the cache has everything.
    engine.warm(plan.contexts_needed(jobs));

    let mut reporters = Reporters::default();
    match args.format {
        Format::Human => reporters.0.push(Box::new(report::human::Human::stdout())),
        Format::Json => reporters
            .0
            .push(Box::new(report::json::Json::new(std::io::stdout()))),
    }
    let finished = crate::run::execute(&engine, &plan, &keys, jobs, &cancel, &mut reporters);
    drop(engine);
    if let Some(signal) = finished.signal {
        eprintln!("aula: stopped by signal {signal}; the verdicts above are those that finished");
        return ExitCode::from(Signals::exit_status(signal));
    }
    ExitCode::from(if finished.all_passed() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    })
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
