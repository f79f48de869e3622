//! What `aula grade` writes: `grades.csv`, `grades.json`, `feedback/`, the
//! JUnit report, and the results log that `--resume` reads. Everything here
//! is made from [`Graded`] values, so a resumed batch writes what an
//! uninterrupted one would have.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use rust_i18n::t;
use serde::{Deserialize, Serialize};

use super::{Graded, StudentGrade, round2};
use crate::lesson::Lesson;

/// The results log, in the output folder: a header line, then one line per
/// finished student, flushed as each finishes.
pub const LOG: &str = "grading-log.jsonl";

/// What a log must match to be resumed: the same aula, reference and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogHeader {
    pub aula: String,
    pub reference: String,
    pub inputs: String,
    pub partition: Option<String>,
}

/// The log of a batch, open for appending.
pub struct Log {
    file: std::fs::File,
}

impl Log {
    /// Starts a new log, or with `resume` continues the one in `dir`,
    /// returning the students it already holds. A log of other inputs is
    /// not resumed: its grades would not be this batch's.
    pub fn open(dir: &Path, header: &LogHeader, resume: bool) -> Result<(Log, Vec<Graded>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(LOG);
        let mut kept = Vec::new();
        if resume && let Ok(text) = std::fs::read_to_string(&path) {
            let mut lines = text.lines();
            let theirs: Option<LogHeader> = lines.next().and_then(|l| serde_json::from_str(l).ok());
            if theirs.as_ref() != Some(header) {
                anyhow::bail!(
                    "{} is from another reference, aula or options; grade without --resume",
                    path.display()
                );
            }
            // A line cut short by a kill is the student being graded then.
            kept = lines
                .filter_map(|l| serde_json::from_str::<Graded>(l).ok())
                .collect();
        }
        let mut file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut text = serde_json::to_string(header)? + "\n";
        for g in &kept {
            text += &(serde_json::to_string(g)? + "\n");
        }
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        Ok((Log { file }, kept))
    }

    /// Appends a finished student, on disk before the next one.
    pub fn append(&mut self, graded: &Graded) -> Result<()> {
        let line = serde_json::to_string(graded)? + "\n";
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// A CSV field, quoted when it must be (RFC 4180). A field a spreadsheet
/// would run as a formula (one starting with `=`, `+`, `-` or `@`, or with
/// a tab or carriage return, which some take for those) gets a leading `'`,
/// so a student named `=HYPERLINK(...)` is only a name.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn number(x: f64) -> String {
    let r = round2(x);
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// What a gradebook says besides its students: the reference, its graded
/// exercises in lesson order, and (an extension of GRADE-FORMAT.md) the
/// batch it came from, so shards can be merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gradebook {
    pub reference: String,
    pub exercises: Vec<String>,
    pub max_score: u32,
    pub run: BatchInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchInfo {
    pub aula: String,
    /// A digest of the reference and the options: shards of one batch agree.
    pub inputs: String,
    /// `hash:M/N` or `slice:M/N` for a shard; `null` for a whole batch.
    pub partition: Option<String>,
    /// Every student of the batch, sharded or not.
    pub all_students: Vec<String>,
}

impl Gradebook {
    pub fn of(reference: &Lesson, run: BatchInfo) -> Gradebook {
        let graded = super::graded_exercises(reference);
        Gradebook {
            reference: reference.path.display().to_string(),
            exercises: graded
                .iter()
                .map(|(i, _)| reference.exercises[*i].id.clone())
                .collect(),
            max_score: super::max_score(reference),
            run,
        }
    }
}

/// `grades.csv`: a header, then a row per student in name order.
pub fn csv(book: &Gradebook, grades: &[StudentGrade]) -> String {
    let ids = &book.exercises;
    let mut out = String::from("student,status,score,max_score");
    for id in ids {
        out.push(',');
        out.push_str(&csv_field(id));
    }
    out.push('\n');
    for g in grades {
        let mut row = vec![
            csv_field(&g.student),
            g.status.to_string(),
            number(g.score),
            g.max_score.to_string(),
        ];
        for id in ids {
            let score = g
                .exercises
                .iter()
                .find(|e| &e.id == id)
                .map_or(0.0, |e| e.score);
            row.push(number(score));
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct Summary {
    students: usize,
    graded: usize,
    #[serde(serialize_with = "super::two_decimals")]
    mean_score: f64,
    max_score: u32,
}

#[derive(Serialize)]
struct GradesJson<'a> {
    reference: &'a str,
    students: &'a [StudentGrade],
    summary: Summary,
    exercises: &'a [String],
    run: &'a BatchInfo,
}

/// `grades.json`, as GRADE-FORMAT.md shows it, its keys in that order, with
/// `exercises` and `run` added.
pub fn json(book: &Gradebook, grades: &[StudentGrade]) -> String {
    let doc = GradesJson {
        reference: &book.reference,
        students: grades,
        summary: Summary {
            students: grades.len(),
            graded: grades
                .iter()
                .filter(|g| g.status == super::GradeStatus::Graded)
                .count(),
            mean_score: mean(grades),
            max_score: book.max_score,
        },
        exercises: &book.exercises,
        run: &book.run,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The JUnit XML report of these grades (`--junit`), for `aula grade` and
/// `aula merge --grades` alike: a suite per student, a case per check
/// (`ana::tcp-echo::server`), and for an unreadable submission one failing
/// case with the reasons. It reads only fields `grades.json` holds (so no
/// hidden client's details), so a merge of shards, which reads those
/// files back, gives what one batch would have.
pub fn junit(grades: &[StudentGrade]) -> String {
    use crate::report::ci::failed_case;
    use quick_junit::{Report, TestCase, TestCaseStatus, TestSuite};
    let mut junit = Report::new("aula grade");
    for student in grades {
        let name = student.student.as_str();
        let mut suite = TestSuite::new(name);
        if !student.errors.is_empty() {
            let errors = &student.errors;
            let mut case = failed_case(
                format!("{name}::(submission)"),
                student.status.as_str(),
                errors.join("; "),
                errors.join("\n"),
            );
            case.set_classname(name);
            suite.add_test_case(case);
        }
        for ex in &student.exercises {
            for check in &ex.checks {
                let case_name = format!("{name}::{}::{}", ex.id, check.check);
                let mut case = if check.passed() {
                    TestCase::new(case_name, TestCaseStatus::success())
                } else {
                    let said = |s: &Option<String>| s.clone().unwrap_or_default();
                    failed_case(
                        case_name,
                        check.verdict.as_str(),
                        said(&check.message),
                        said(&check.compiler) + &said(&check.diff),
                    )
                };
                case.set_classname(format!("{name}::{}", ex.id));
                suite.add_test_case(case);
            }
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().unwrap_or_default()
}

/// A `grades.json` read back, for merging shards.
#[derive(Debug, Deserialize)]
pub struct GradesFile {
    pub reference: String,
    pub students: Vec<StudentGrade>,
    pub summary: serde_json::Value,
    pub exercises: Vec<String>,
    pub run: BatchInfo,
}

/// The mean score of a batch.
pub fn mean(grades: &[StudentGrade]) -> f64 {
    if grades.is_empty() {
        return 0.0;
    }
    grades.iter().map(|g| g.score).sum::<f64>() / grades.len() as f64
}

/// A student's feedback: the score, each exercise's checks with verdicts,
/// messages, diffs and compiler errors at the student's own lines, and the
/// hint of each exercise that did not pass. `said` holds what the checks
/// and the reasons of an unreadable submission say in the feedback's
/// language.
pub fn feedback(
    grade: &StudentGrade,
    said: &super::Said,
    reference: &Lesson,
    lang: &str,
) -> String {
    let local = &said.checks;
    let l = lang;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}\n",
        t!(
            "grade.fb_title",
            locale = l,
            student = grade.student,
            // The lesson's file name: never the instructor's folders.
            lesson = reference
                .path
                .file_name()
                .unwrap_or(reference.path.as_os_str())
                .to_string_lossy()
        )
    );
    let _ = writeln!(
        out,
        "{}\n",
        t!(
            "grade.fb_score",
            locale = l,
            score = number(grade.score),
            max = grade.max_score
        )
    );
    if !grade.errors.is_empty() {
        let _ = writeln!(out, "{}\n", t!("grade.fb_errors", locale = l));
        for (i, e) in grade.errors.iter().enumerate() {
            let e = said.errors.get(i).unwrap_or(e);
            if e.contains(['\n', '\r']) {
                let _ = write!(out, "-");
                fenced(&mut out, e, "text", "  ");
            } else {
                let _ = writeln!(out, "- {e}");
            }
        }
        out.push('\n');
    }
    for (k, ex) in grade.exercises.iter().enumerate() {
        let _ = writeln!(
            out,
            "## {} — {}\n",
            ex.id,
            t!(
                "grade.fb_points",
                locale = l,
                score = number(ex.score),
                max = ex.points
            )
        );
        for (c, check) in ex.checks.iter().enumerate() {
            let mark = if check.passed() { "✓" } else { "✗" };
            let name = if check.check == super::CheckKind::Server {
                t!("grade.check_server", locale = l)
            } else {
                t!("grade.check_client", locale = l)
            };
            let _ = writeln!(out, "- {mark} {name}: `{}`", check.verdict);
            let said = local.get(k).and_then(|m| m.get(c));
            if let Some(m) = said
                .and_then(|s| s.message.clone())
                .or_else(|| check.message.clone())
            {
                text_at(&mut out, &m, "  ");
            }
            let names = said
                .map(|s| &s.tests)
                .filter(|names| names.len() == check.tests.len());
            for (i, test) in check.tests.iter().enumerate() {
                let name = names.map_or(test.test.as_str(), |n| n[i].as_str());
                let _ = writeln!(out, "  - {name}: `{}`", test.verdict.as_str());
            }
            for (block, info) in [(&check.compiler, "text"), (&check.diff, "diff")] {
                if let Some(text) = block {
                    fenced(&mut out, text, info, "  ");
                }
            }
        }
        let passed = !ex.checks.is_empty() && ex.checks.iter().all(|c| c.passed());
        if !passed && let Some(hint) = reference.exercise(&ex.id).and_then(|e| e.hint.as_deref()) {
            let _ = writeln!(out, "\n{}\n", t!("grade.fb_hint", locale = l));
            for line in hint.trim().lines() {
                let _ = writeln!(out, "> {line}");
            }
        }
        out.push('\n');
    }
    out
}

/// The lines of text as Markdown reads them: `\r` ends a line too.
fn markdown_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split("\r\n").flat_map(|l| l.split(['\n', '\r']))
}

/// A fence for `text`: longer than any run of backticks in it, since
/// CommonMark ends a block only at a fence at least as long as the one that
/// opened it, so a compiler message or an output holding ``` cannot end
/// the block and be read as the feedback's own Markdown.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// `text` as a fenced block, every line indented by `indent` (the list
/// item it belongs to), so no line can leave the item either.
fn fenced(out: &mut String, text: &str, info: &str, indent: &str) {
    let fence = fence_for(text);
    let _ = writeln!(out, "\n{indent}{fence}{info}");
    for line in markdown_lines(text.trim_end()) {
        let _ = writeln!(out, "{indent}{line}");
    }
    let _ = writeln!(out, "{indent}{fence}");
}

/// A message in a list item: on its line when it is one line, else (a
/// panic message can be anything) in a fenced block.
fn text_at(out: &mut String, text: &str, indent: &str) {
    if text.contains(['\n', '\r']) {
        fenced(out, text, "text", indent);
    } else {
        let _ = writeln!(out, "{indent}{text}");
    }
}

/// A student's name as a file name: what a file system takes, nothing else.
pub(crate) fn file_name(student: &str) -> String {
    let cleaned: String = student
        .chars()
        .map(|c| {
            if c == '/' || c == '\0' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// Writes the gradebook and the feedback of `graded` (sorted by student).
/// Feedback files of earlier batches in the folder are replaced.
pub fn write_all(dir: &Path, book: &Gradebook, graded: &[Graded]) -> Result<Vec<PathBuf>> {
    let grades: Vec<StudentGrade> = graded.iter().map(|g| g.grade.clone()).collect();
    let csv_path = dir.join("grades.csv");
    let json_path = dir.join("grades.json");
    crate::fs::write_atomically(&csv_path, csv(book, &grades))?;
    crate::fs::write_atomically(&json_path, json(book, &grades))?;
    let fb = dir.join("feedback");
    if let Ok(old) = std::fs::read_dir(&fb) {
        for e in old.flatten() {
            if e.path().extension().is_some_and(|x| x == "md") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    std::fs::create_dir_all(&fb).with_context(|| format!("creating {}", fb.display()))?;
    for g in graded {
        let path = fb.join(format!("{}.md", file_name(&g.grade.student)));
        crate::fs::write_atomically(&path, &g.feedback)?;
    }
    Ok(vec![csv_path, json_path, fb])
}

/// Merges the output folders of a batch's shards into what one unsharded
/// batch would have written: refused when they come from different aula
/// versions or inputs, overlap, or leave a student out.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(Gradebook, Vec<StudentGrade>), String> {
    let mut shards = Vec::new();
    for dir in dirs {
        let path = dir.join("grades.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: GradesFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        shards.push((dir, file));
    }
    let (_, first) = shards.first().ok_or("no grade folders to merge")?;
    let mut seen = std::collections::BTreeSet::new();
    for (dir, shard) in &shards {
        if shard.run.aula != first.run.aula || shard.run.inputs != first.run.inputs {
            return Err(format!(
                "{} comes from another aula or other inputs than {}; shards must come from one batch",
                dir.display(),
                shards[0].0.display()
            ));
        }
        for s in &shard.students {
            if !seen.insert(s.student.clone()) {
                return Err(format!(
                    "`{}` is in more than one folder: the shards overlap",
                    s.student
                ));
            }
        }
    }
    if let Some(missing) = first.run.all_students.iter().find(|s| !seen.contains(*s)) {
        return Err(format!("no folder has `{missing}`: a shard is missing"));
    }
    let mut students: Vec<StudentGrade> = shards
        .iter()
        .flat_map(|(_, s)| s.students.clone())
        .collect();
    students.sort_by(|a, b| a.student.cmp(&b.student));
    let book = Gradebook {
        reference: first.reference.clone(),
        exercises: first.exercises.clone(),
        max_score: first.summary["max_score"].as_u64().unwrap_or(0) as u32,
        run: BatchInfo {
            partition: None,
            ..first.run.clone()
        },
    };
    let write = |path: PathBuf, text: &str| {
        crate::fs::write_atomically(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    std::fs::create_dir_all(out.join("feedback")).map_err(|e| format!("{}: {e}", out.display()))?;
    write(out.join("grades.csv"), &csv(&book, &students))?;
    write(out.join("grades.json"), &json(&book, &students))?;
    for (dir, shard) in &shards {
        for s in &shard.students {
            let name = format!("{}.md", file_name(&s.student));
            if let Ok(text) = std::fs::read_to_string(dir.join("feedback").join(&name)) {
                write(out.join("feedback").join(&name), &text)?;
            }
        }
    }
    Ok((book, students))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("ana"), "ana");
        assert_eq!(csv_field("silva, ana"), "\"silva, ana\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn csv_fields_a_spreadsheet_would_run_as_formulas_are_only_text() {
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("+cmd"), "'+cmd");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
        assert_eq!(
            csv_field("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_field("ana-maria"), "ana-maria");
    }

    #[test]
    fn feedback_speaks_the_students_language_and_gives_the_hint_of_what_failed() {
        let reference = crate::lesson::parse(
            Path::new("ref.md"),
            "```rust,server,exercise=e\n// BEGIN SOLUTION\n// END SOLUTION\n```\n\n\
             ```rust,client,exercise=e\n```\n\n\
             <details>\n<summary>Dica</summary>\n\nLeia a linha toda.\n</details>\n",
        )
        .unwrap();
        let check = super::super::CheckGrade {
            check: super::super::CheckKind::Server,
            verdict: super::super::CheckVerdict::Ran(crate::outcome::Verdict::Mismatch),
            message: Some("hidden test 1 did not pass (mismatch)".to_owned()),
            diff: None,
            compiler: None,
            tests: vec![super::super::TestGrade {
                test: "hidden test 1".to_owned(),
                verdict: crate::outcome::Verdict::Mismatch,
                hidden: true,
            }],
        };
        let grade = StudentGrade {
            student: "ana".to_owned(),
            path: "ana.md".to_owned(),
            status: super::super::GradeStatus::Graded,
            score: 0.0,
            max_score: 1,
            errors: Vec::new(),
            exercises: vec![super::super::ExerciseGrade {
                id: "e".to_owned(),
                points: 1,
                score: 0.0,
                checks: vec![check],
            }],
        };
        let said = super::super::Said {
            checks: vec![vec![super::super::Local {
                message: Some("teste oculto 1 não passou (mismatch)".to_owned()),
                tests: vec!["teste oculto 1".to_owned()],
            }]],
            errors: Vec::new(),
        };
        let text = feedback(&grade, &said, &reference, "pt");
        assert!(text.contains("**Nota: 0 de 1**"), "{text}");
        assert!(text.contains("teste oculto 1 não passou"), "{text}");
        assert!(text.contains("- teste oculto 1: `mismatch`"), "{text}");
        assert!(text.contains("> Leia a linha toda."), "{text}");
        assert!(!text.contains("hidden test"), "{text}");
    }

    /// The text of Markdown that is not in a code block, and the code
    /// blocks' text, as a CommonMark reader sees them.
    fn read_markdown(md: &str) -> (String, Vec<String>) {
        use pulldown_cmark::{Event, Parser, Tag, TagEnd};
        let (mut prose, mut blocks, mut inside) = (String::new(), Vec::new(), false);
        for event in Parser::new(md) {
            match event {
                Event::Start(Tag::CodeBlock(_)) => {
                    inside = true;
                    blocks.push(String::new());
                }
                Event::End(TagEnd::CodeBlock) => inside = false,
                Event::Text(t) if inside => blocks.last_mut().unwrap().push_str(&t),
                Event::Text(t) | Event::Code(t) => prose.push_str(&t),
                Event::Start(Tag::Heading { .. }) => prose.push_str("\n# "),
                _ => {}
            }
        }
        (prose, blocks)
    }

    #[test]
    fn backticks_in_a_message_cannot_end_its_block() {
        let reference = crate::lesson::parse(
            Path::new("ref.md"),
            "```rust,server,exercise=e\n// BEGIN SOLUTION\n// END SOLUTION\n```\n\n\
             ```rust,client,exercise=e\n```\n",
        )
        .unwrap();
        let escape = "error: x\n```\n# Score: 10 of 10 INJECTED\n````\n";
        let check = super::super::CheckGrade {
            check: super::super::CheckKind::Server,
            verdict: super::super::CheckVerdict::Ran(crate::outcome::Verdict::CompileError),
            message: Some("panicked: a\n```\n# INJECTED\rtoo".to_owned()),
            diff: Some(" ```\n+````` INJECTED\n".to_owned()),
            compiler: Some(escape.to_owned()),
            tests: Vec::new(),
        };
        let grade = StudentGrade {
            student: "ana".to_owned(),
            path: "ana.md".to_owned(),
            status: super::super::GradeStatus::Error,
            score: 0.0,
            max_score: 1,
            errors: vec!["e server: evcxr said\n```\n# INJECTED".to_owned()],
            exercises: vec![super::super::ExerciseGrade {
                id: "e".to_owned(),
                points: 1,
                score: 0.0,
                checks: vec![check],
            }],
        };
        let text = feedback(&grade, &Default::default(), &reference, "en");
        let (prose, blocks) = read_markdown(&text);
        assert!(!prose.contains("INJECTED"), "{prose}\n---\n{text}");
        assert_eq!(prose.matches("\n# ").count(), 2, "{prose}");
        assert_eq!(blocks.len(), 4, "{blocks:?}");
        assert!(blocks[2].contains("````\n"), "{blocks:?}");
        assert!(text.contains("\n  `````text\n  error: x\n"), "{text}");
        assert!(text.contains("\n  ``````diff\n"), "{text}");
        // An ordinary block keeps its three backticks.
        assert_eq!(fence_for("no fence here `x`"), "```");
    }

    #[test]
    fn student_names_cannot_leave_the_feedback_folder() {
        assert_eq!(file_name("../etc/x"), ".._etc_x");
        assert_eq!(file_name(".."), "_..");
    }
}
