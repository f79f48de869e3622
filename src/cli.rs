//! The command line: `aula run [PATH]...`. Parses arguments, loads lessons,
//! drives the engine and a reporter, and turns the outcome into an exit status.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use crate::cache::Cache;
use crate::exec::netns::{self, Netns};
use crate::exec::sandbox::{self, Limits};
use crate::exec::{Engine, Options};
use crate::lesson::{self, Lesson, LessonError};
use crate::report;

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
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    output_cap: usize,
    /// Seconds a server has to end by itself after its last client.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    grace: f64,
    /// Wall-clock limit of a plain cell, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    cell_timeout: f64,
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
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(usize))]
    jobs: Option<usize>,
    /// Address space of each process running students' code, in MiB (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    max_memory: u64,
    /// Largest file students' code may write, in MiB (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    max_file_size: u64,
    /// Most processes of the user while students' code runs (0: no limit).
    /// Linux counts all of the user's processes, and does not enforce it for root.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_processes: u64,
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

fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{flag} takes a number of seconds, not {value}"))
}

/// Loads every lesson the paths name, or all the reasons they cannot run.
pub fn load_lessons(paths: &[PathBuf]) -> Result<Vec<Lesson>, Vec<LessonError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match lesson::discover(path) {
            Ok(found) => {
                for f in found {
                    if !files.contains(&f) {
                        files.push(f);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let mut lessons = Vec::new();
    for file in files {
        match lesson::load(&file) {
            Ok(l) => lessons.push(l),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(lessons)
    } else {
        Err(errors)
    }
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
    }
}

fn run(args: RunArgs) -> ExitCode {
    let begun = Instant::now();
    let lessons = match load_lessons(&args.paths) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let known: Vec<&str> = lessons
        .iter()
        .flat_map(|l| l.exercises.iter().map(|e| e.id.as_str()))
        .collect();
    for id in &args.exercises {
        if !known.contains(&id.as_str()) {
            let hint = strsim_hint(id, &known);
            return usage_error(format!("no exercise `{id}` in the lessons given{hint}"));
        }
    }
    let options = match (
        seconds("grace", args.grace),
        seconds("cell-timeout", args.cell_timeout),
    ) {
        (Ok(grace), Ok(cell_timeout)) => Options {
            output_cap: args.output_cap,
            grace,
            cell_timeout,
            limits: Limits {
                address_space: (args.max_memory > 0)
                    .then_some(args.max_memory.saturating_mul(1 << 20)),
                file_size: (args.max_file_size > 0)
                    .then_some(args.max_file_size.saturating_mul(1 << 20)),
                processes: (args.max_processes > 0).then_some(args.max_processes),
            },
            opt_level: args.opt_level.clone(),
            ..Options::default()
        },
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };

    let selected =
        |ex: &lesson::Exercise| args.exercises.is_empty() || args.exercises.contains(&ex.id);
    // With --exercise, lessons without a chosen exercise are not run at all.
    let lessons: Vec<Lesson> = lessons
        .into_iter()
        .filter(|l| args.exercises.is_empty() || l.exercises.iter().any(selected))
        .collect();
    let cache = if args.no_cache {
        None
    } else {
        Cache::default_dir().map(Cache::at)
    };
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    sandbox::become_subreaper();
    sandbox::watch_signals();
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
    let mut engine = match Engine::new(options, cache, jobs, netns) {
        Ok(e) => e,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    // Started now, they warm up while the first cells are prepared; none
    // when the cache has everything.
    engine.warm(engine.contexts_needed(&lessons, &selected));

    let mut human = (args.format == Format::Human).then(report::human::Human::stdout);
    let mut results = Vec::new();
    for lesson in &lessons {
        let outcome = engine.run_lesson(lesson, &selected, &mut |event| {
            if let Some(h) = human.as_mut() {
                h.event(event);
            }
        });
        match outcome {
            Ok(r) => results.push(r),
            Err(e) => {
                drop(engine);
                sandbox::kill_descendants();
                eprintln!("error: {}: the runner failed: {e:#}", lesson.path.display());
                return ExitCode::from(EXIT_UNUSABLE);
            }
        }
        if sandbox::interrupted() {
            break;
        }
    }
    // Contexts kill their process groups when dropped; the sweep catches
    // whatever escaped a group.
    drop(engine);
    sandbox::kill_descendants();
    match human.as_mut() {
        Some(h) => h.finish(&results, &lessons, begun.elapsed()),
        None => {
            let report = report::json::report(&results, &lessons);
            // A reader that went away (`| head`) is not worth a panic.
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, &report);
            let _ = writeln!(out);
        }
    }
    if let Some(signal) = sandbox::stop_signal() {
        eprintln!("aula: stopped by signal {signal}; the verdicts above are those that finished");
        return ExitCode::from(128 + signal as u8);
    }
    ExitCode::from(if crate::outcome::all_passed(&results) {
        EXIT_PASS
    } else {
        EXIT_FAIL
    })
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn strsim_hint(id: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(id, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}
