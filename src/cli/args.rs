//! The arguments of every command, as clap parses them, with their
//! defaults (here, once) and what they mean for the engine: its options,
//! the cache, how many jobs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cache::Cache;
use crate::exec::sandbox::Limits;
use crate::exec::{Builder, Engine, Options};
use crate::partition::Partition;

#[derive(Parser, Debug)]
#[command(
    name = "aula",
    version = concat!(env!("CARGO_PKG_VERSION"), " (built with ", env!("AULA_BUILT_WITH"), ")"),
    about = "Runs Rust lessons written in Markdown, like notebooks, and grades their server/client exercises"
)]
pub struct Cli {
    /// Without one, on a terminal: the interactive course (`aula watch`);
    /// in a pipe: what `aula run` prints.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
    /// Rank pairs of submissions by how much graded code they share: evidence
    /// for a person to read, never a verdict.
    Similar(SimilarArgs),
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
pub struct GradeArgs {
    /// The reference lesson, with solution regions (and hidden clients, hints).
    pub reference: PathBuf,
    /// Submissions: lesson files, folders holding one, or folders of those.
    #[arg(required = true)]
    pub submissions: Vec<PathBuf>,
    /// Folder for grades.csv, grades.json, feedback/ and the results log.
    #[arg(long, value_name = "DIR", default_value = "grades")]
    pub out: PathBuf,
    /// Keep the students the results log in DIR already holds; grade the rest.
    #[arg(long)]
    pub resume: bool,
    /// Report format on stdout (json: grades.json).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Grade even where the kernel cannot confine students' code (no
    /// Landlock): only for code you trust.
    #[arg(long)]
    pub unsandboxed: bool,
    /// Also write a JUnit XML report to this file: a suite per student, a
    /// case per check.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Also write Gradescope's autograder `results.json` to this file: a
    /// test per check, hidden tests shown once published. For a batch of
    /// one submission, as Gradescope's autograder grades one.
    #[arg(long, value_name = "PATH")]
    pub gradescope: Option<PathBuf>,
    /// After grading, list the students whose score changed against the
    /// gradebook in DIR (an earlier `--out`), with the checks whose verdict
    /// changed; also written to OUT/changes.csv.
    #[arg(long, value_name = "DIR")]
    pub compare: Option<PathBuf>,
    /// A Canvas gradebook export (CSV): writes OUT/canvas.csv, the same
    /// export with each student's score in its assignment column, for
    /// Canvas to import.
    #[arg(long, value_name = "EXPORT.csv")]
    pub canvas: Option<PathBuf>,
    /// The assignment column to fill (its name, with or without ` (ID)`),
    /// when the export has several.
    #[arg(long, value_name = "NAME", requires = "canvas")]
    pub canvas_column: Option<String>,
    /// A CSV of `student,login` (with that header): the login (Canvas's
    /// `SIS Login ID`) of each submission's student, where it is not the
    /// submission's name.
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// Grade one shard of the submissions (by student): `hash:M/N` or
    /// `slice:M/N`; `aula merge --grades` puts the shards together.
    #[arg(long, value_name = "KIND:M/N", value_parser = clap::value_parser!(Partition))]
    pub partition: Option<Partition>,
    /// A larger submission file is `invalid`, without being read: bytes,
    /// or with a K, M or G suffix (KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    pub max_submission_size: crate::grade::intake::ByteSize,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
pub struct SimilarArgs {
    /// The reference lesson: its student copy's code is not evidence.
    pub reference: PathBuf,
    /// Submissions: lesson files, folders holding one, or folders of those.
    #[arg(required = true)]
    pub submissions: Vec<PathBuf>,
    /// Folder for similarity.csv, similarity.html and pairs/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Pairs shown on the terminal, highest first.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// A larger submission file is left out, without being read.
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    pub max_submission_size: crate::grade::intake::ByteSize,
}

#[derive(clap::Args, Debug)]
pub struct StudentArgs {
    /// Lesson files, or folders of them.
    #[arg(default_value = "lessons")]
    pub paths: Vec<PathBuf>,
    /// Folder to write the copies to (file names are kept).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LessonFormat {
    Ipynb,
    Md,
}

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The lesson: a Markdown file or a notebook.
    pub lesson: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    pub to: LessonFormat,
    /// Where to write it (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The lesson: a Markdown file or a notebook.
    pub lesson: PathBuf,
    /// The file to write: `.html` (one self-contained page) or `.md`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
pub struct HintArgs {
    /// The exercise's ID.
    pub id: String,
    /// Lesson files, or folders of them.
    #[arg(default_value = "lessons")]
    pub paths: Vec<PathBuf>,
}

/// Seconds between 0 and an hour, as a duration.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&value) {
        return Err(format!("{value} is not between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// Like [`seconds`], but more than zero.
pub fn positive_seconds(text: &str) -> Result<Duration, String> {
    match seconds(text)? {
        d if d.is_zero() => Err("the limit must be more than 0 seconds".to_owned()),
        d => Ok(d),
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Lesson files, or folders of them (run in file-name order).
    #[arg(default_value = "lessons")]
    pub paths: Vec<PathBuf>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Run only this exercise (repeatable). Plain cells still run, since
    /// exercises see their items and variables.
    #[arg(long = "exercise", value_name = "ID")]
    pub exercises: Vec<String>,
    /// Also write a JUnit XML report to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Rewrite the `output` blocks of cells that ran to their end and printed
    /// something else (for lesson authors); implies --no-cache.
    #[arg(long)]
    pub bless: bool,
    /// With --bless, also add an `output` block to cells that have none.
    #[arg(long, requires = "bless")]
    pub bless_new: bool,
    /// Write each exercise's connections as a pcapng capture in this folder
    /// (`LESSON-EXERCISE.pcapng`), for Wireshark or `tshark -r`. Implies
    /// --trace.
    #[arg(long, value_name = "DIR")]
    pub pcap: Option<PathBuf>,
    /// Run one shard of the units: `hash:M/N` or `slice:M/N`.
    #[arg(long, value_name = "KIND:M/N", value_parser = clap::value_parser!(Partition))]
    pub partition: Option<Partition>,
    /// `aula render`'s file: the executed lesson is written there.
    #[arg(skip)]
    pub render: Option<PathBuf>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

impl RunArgs {
    /// `aula run PATHS` with these options and nothing else.
    pub fn human(paths: Vec<PathBuf>, exec: ExecArgs) -> RunArgs {
        RunArgs {
            paths,
            format: Format::Human,
            exercises: Vec::new(),
            junit: None,
            pcap: None,
            bless: false,
            bless_new: false,
            partition: None,
            render: None,
            exec,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// JSON reports of the shards (`aula run --partition ... --format json`),
    /// or with --grades the output folders of `aula grade --partition`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Also write the merged JUnit XML report to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Merge grading shards' folders (grades.json, feedback/) into --out.
    #[arg(long)]
    pub grades: bool,
    /// With --grades, the folder for the merged gradebook.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "grades",
        requires = "grades"
    )]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Lesson files, or folders of them (the course, in file-name order).
    #[arg(default_value = "lessons")]
    pub paths: Vec<PathBuf>,
    /// Do not watch the files (for file systems that send no events): `r`
    /// runs the exercise again.
    #[arg(long)]
    pub manual_run: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Lesson files, or folders of them.
    #[arg(default_value = "lessons")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// How students' code is run: shared by `run` and `watch`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Most bytes a cell may write to stdout before it is stopped.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub output_cap: u64,
    /// Seconds a server has to end by itself after its last client.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    pub grace: Duration,
    /// Wall-clock limit of a plain cell, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_seconds)]
    pub cell_timeout: Duration,
    /// Seconds the compiler may spend on a cell before it is stopped and the
    /// cell gets `timeout` (default 300; in `aula grade`, 60).
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    pub compile_timeout: Option<Duration>,
    /// Optimisation level of students' code (rustc -C opt-level).
    #[arg(long, value_name = "LEVEL", default_value = "0",
          value_parser = ["0", "1", "2", "3", "s", "z"])]
    pub opt_level: String,
    /// Run students' code in a private network namespace with only loopback
    /// up (where user namespaces are available; otherwise a warning, and the
    /// run goes on without).
    #[arg(long)]
    pub isolate: bool,
    /// Run everything, neither reading nor writing the result cache.
    #[arg(long)]
    pub no_cache: bool,
    /// How many exercises run at once (default: half the cores, at least 1;
    /// each exercise compiles a server and a client side by side). In
    /// `aula grade`, how many students are graded at once (default: one a
    /// core).
    #[arg(long, short = 'j', value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,
    /// Address space of each process running students' code, in MiB (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub max_memory: u64,
    /// Largest file students' code may write, in MiB (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub max_file_size: u64,
    /// Most processes of the user while students' code runs (0: no limit;
    /// default 4096). Linux counts all of the user's processes, and does not
    /// enforce it for root. In `aula grade`, also the most processes and
    /// threads of each cell's program, held by a pids cgroup (default 128).
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,
    /// Put a relay between each exercise's clients and its server that
    /// records the bytes of every connection (TCP and UDP), and show them
    /// under a failing exercise. Clients get the relay's port. Implies
    /// --no-cache.
    #[arg(long)]
    pub trace: bool,
}

impl ExecArgs {
    /// The options as they are when no flag is given.
    pub fn try_parse_defaults() -> ExecArgs {
        match Cli::try_parse_from(["aula", "run"]).map(|c| c.command) {
            Ok(Some(Command::Run(args))) => args.exec,
            _ => unreachable!("`aula run` parses"),
        }
    }

    pub fn options(&self) -> Options {
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
pub enum Format {
    Human,
    Json,
}

impl ExecArgs {
    /// The result cache, unless --no-cache or --trace.
    pub fn cache(&self) -> Option<Cache> {
        if self.no_cache || self.trace {
            None
        } else {
            Cache::default_dir().map(Cache::at)
        }
    }

    /// How many exercises run at once.
    pub fn jobs(&self) -> usize {
        self.jobs.map_or_else(default_jobs, usize::from)
    }

    /// How many students are graded at once: by default one a core. A
    /// check spends much of its time waiting (a server's clients, the
    /// reference's halves), so a worker a core keeps the machine busy: 40
    /// submissions with servers that loop took 46.7 s at `-j 2` against
    /// 69.5 s at `-j 1` on two cores (BENCHMARKS.md).
    pub fn grading_jobs(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.jobs.map_or(cores, usize::from)
    }

    /// An engine for these options, in a private network with --isolate.
    pub fn engine(&self) -> Builder {
        Engine::builder(self.options()).namespaces(usize::from(self.isolate))
    }
}

pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
