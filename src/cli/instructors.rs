//! The instructors' commands: `aula grade`, `aula similar` and `aula merge`,
//! each an argument mapping onto the library (`grade::batch`,
//! `grade::similar`, `merge`) and an exit status.

use std::process::ExitCode;

use super::args::{Format, GradeArgs, MergeArgs, SimilarArgs};
use super::{EXIT_FAIL, EXIT_PASS, lesson_errors, require_python, require_std_source, usage_error};
use crate::exec::Signals;
use crate::lesson;
use crate::report;

pub(super) fn merge(args: MergeArgs) -> ExitCode {
    if args.grades {
        return merge_grades(&args);
    }
    let shards = match crate::merge::read(&args.reports) {
        Ok(shards) => shards,
        Err(e) => return usage_error(e),
    };
    match crate::merge::merge(&shards) {
        Ok(merged) => {
            report::ci::finish(&merged.to_value(), true, args.junit.as_deref());
            let passed = merged.summary.failed == 0 && crate::merge::cells_passed(&merged);
            ExitCode::from(if passed { EXIT_PASS } else { EXIT_FAIL })
        }
        Err(e) => usage_error(e),
    }
}

fn merge_grades(args: &MergeArgs) -> ExitCode {
    let lang = crate::i18n::from_env();
    match crate::grade::batch::merge(&args.reports, &args.out, args.junit.as_deref(), lang) {
        Ok(runner_failed) => ExitCode::from(if runner_failed { EXIT_FAIL } else { EXIT_PASS }),
        Err(e) => usage_error(e),
    }
}

pub(super) fn grade(mut args: GradeArgs) -> ExitCode {
    use crate::grade::{self, batch};

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
    let config = batch::Config {
        submissions: args.submissions,
        out: args.out,
        resume: args.resume,
        json: args.format == Format::Json,
        unsandboxed: args.unsandboxed,
        junit: args.junit,
        gradescope: args.gradescope,
        compare: args.compare,
        canvas: args.canvas.map(|export| batch::Canvas {
            export,
            column: args.canvas_column,
            roster: args.roster,
        }),
        partition: args.partition,
        max_submission_size: args.max_submission_size,
        options: args.exec.options(),
        max_processes: args.exec.max_processes,
        max_memory: args.exec.max_memory,
        jobs: args.exec.grading_jobs(),
        lang: crate::i18n::from_env(),
    };
    match batch::grade(&reference, &config) {
        Ok(batch::Ended::Graded { runner_failed }) => {
            ExitCode::from(if runner_failed { EXIT_FAIL } else { EXIT_PASS })
        }
        Ok(batch::Ended::Interrupted { signal }) => ExitCode::from(Signals::exit_status(signal)),
        Err(message) => usage_error(message),
    }
}

/// `aula similar`: the ranking on the terminal, the files in `--out`.
pub(super) fn similar(args: SimilarArgs) -> ExitCode {
    let lang = crate::i18n::from_env();
    let found = match crate::grade::similar::run(
        &args.reference,
        &args.submissions,
        args.out.as_deref(),
        args.max_submission_size,
    ) {
        Ok(found) => found,
        Err(message) => return usage_error(message),
    };
    for (student, why) in &found.unread {
        eprintln!("warning: {student}: left out: {why}");
    }
    println!("{}\n", crate::grade::similar::DISCLAIMER);
    println!("{}", rust_i18n::t!("similar.header", locale = lang));
    let works = &found.works;
    for p in found.pairs.iter().take(args.top) {
        println!(
            "  {:.3}  {}  {}",
            p.score, works[p.a].student, works[p.b].student
        );
    }
    if let Some(out) = &args.out {
        eprintln!("{}", out.join("similarity.html").display());
    }
    ExitCode::from(EXIT_PASS)
}
