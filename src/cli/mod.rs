//! The command line: parses arguments, then hands each subcommand to the
//! library and turns what it returns into an exit status. The arguments
//! and their defaults are in [`args`].

mod args;
mod instructors;

use std::process::ExitCode;

use clap::Parser;

use crate::cache::Cache;
use crate::exec::net::netns;
use crate::exec::{Signals, StdTypes};
use crate::lesson::{self, Lesson, LessonError};
use crate::plan::{Keys, Selection};
use crate::report;

pub use args::Cli;
use args::{
    Command, ConvertArgs, ExecArgs, Format, HintArgs, LessonFormat, ListArgs, RenderArgs, RunArgs,
    StudentArgs, WatchArgs,
};

/// Exit statuses of REPORT-FORMAT.md.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_UNUSABLE: u8 = 2;

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
    if let Ok(settings) = std::env::var(crate::exec::net::relay::RELAY_ENV) {
        crate::exec::net::relay::relay_main(&settings);
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
        Some(Command::Merge(args)) => instructors::merge(args),
        Some(Command::Student(args)) => student(args),
        Some(Command::Hint(args)) => hint(args),
        Some(Command::Convert(args)) => convert(args),
        Some(Command::Render(args)) => render(args),
        Some(Command::Grade(args)) => instructors::grade(args),
        Some(Command::Similar(args)) => instructors::similar(args),
        None => match Cli::try_parse_from(["aula", "watch"]).map(|c| c.command) {
            Ok(Some(Command::Watch(args))) => watch(args),
            _ => unreachable!("`aula watch` parses"),
        },
    }
}

/// Lessons with Python peer cells need `python3`: said before anything
/// runs, naming each such cell.
fn require_python(lessons: &[Lesson]) -> Result<(), ExitCode> {
    match crate::exec::peer::missing_python(lessons) {
        cells if cells.is_empty() => Ok(()),
        cells => Err(lesson_errors(&cells)),
    }
}

/// Stops a run before anything compiles when a plain cell keeps a variable
/// whose type rust-analyzer must infer and the standard library's source it
/// infers it from is not installed: evcxr would only say it "couldn't
/// automatically determine" the type, which names no fix.
fn require_std_source(lessons: &[Lesson]) -> Result<(), ExitCode> {
    use crate::exec::evcxr::analysis;
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
    let out = match lesson::notebook::convert(&args.lesson, args.to == LessonFormat::Ipynb) {
        Ok(out) => out,
        Err(errors) => return lesson_errors(&errors),
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

fn hint(mut args: HintArgs) -> ExitCode {
    // `aula hint FILE ID` is the order a reader of `aula run FILE` tries
    // first: take it when the ID is a lesson and the one path is not.
    if let [path] = args.paths.as_slice()
        && !path.exists()
        && lesson::has_lesson_extension(std::path::Path::new(&args.id))
        && std::path::Path::new(&args.id).exists()
    {
        let id = path.to_string_lossy().into_owned();
        args.paths = vec![std::path::PathBuf::from(std::mem::replace(
            &mut args.id,
            id,
        ))];
    }
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

fn run(mut args: RunArgs) -> ExitCode {
    // A capture is made of what the relay records.
    args.exec.trace |= args.pcap.is_some();
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
    let (selection, lessons) = Selection::new(lessons, &args.exercises, args.partition);
    if let Err(code) = require_std_source(&lessons) {
        return code;
    }
    let command = crate::run::Command {
        engine: args.exec.engine(),
        // Blessing and rendering need what each cell printed, which the
        // cache does not keep.
        cache: (args.exec.cache()).filter(|_| !args.bless && args.render.is_none()),
        jobs: args.exec.jobs(),
        print_json: args.format == Format::Json,
        junit: args.junit.clone(),
        pcap: args.pcap.clone(),
        inputs,
        partition: args.partition,
    };
    let (finished, host, _signals) = match command.run(&lessons, &selection) {
        Ok(ran) => (ran.finished, ran.host, ran.signals),
        Err(e) => return usage_error(format!("{e:#}")),
    };
    if args.bless && finished.signal.is_none() {
        crate::bless::write_back(&lessons, &finished, &host, args.bless_new);
    }
    if let Some(out) = &args.render
        && finished.signal.is_none()
        && let Some((lesson, result)) = lessons.first().zip(finished.results.first())
    {
        if let Err(e) = report::render::write(out, lesson, result, crate::i18n::from_env()) {
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
        crate::exec::evcxr::analysis::needs_std_types(&lessons)
    });
    let (cache, jobs) = (args.exec.cache(), args.exec.jobs());
    let engine = match args
        .exec
        .engine()
        .std_types(StdTypes::Switchable(std_types))
        .start()
    {
        Ok(engine) => engine,
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
    match args.format {
        Format::Json => print!("{}", crate::course::list::json(&course)),
        Format::Human => print!(
            "{}",
            crate::course::list::human(&course, crate::i18n::from_env())
        ),
    }
    ExitCode::from(EXIT_PASS)
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
