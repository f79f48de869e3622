//! `aula run --bless`, for lesson authors: the `output` blocks of cells that
//! ran to their end and printed something else are rewritten with what they
//! printed, keeping the patterns that still match; with `--bless-new`, cells
//! without an `output` block get one. Cells that did not compile, panicked
//! or timed out are never touched, and no other byte of the file changes.

use crate::compare::{self, Placeholders};
use crate::lesson::{BlockKind, Lesson};
use crate::outcome::{CellResult, LessonResult, Verdict};

/// A lesson rewritten, and the lines (of the cells) whose output changed.
pub struct Blessed {
    pub text: String,
    pub cells: Vec<usize>,
}

/// What to write for one cell: `None` when it stays as it is.
fn new_output(
    lesson: &Lesson,
    r: &CellResult,
    placeholders: Placeholders<'_>,
    add_missing: bool,
) -> Option<String> {
    let actual = r.actual.as_ref()?;
    match &lesson.cell(r.cell).expected {
        Some(expected) if r.verdict == Verdict::Mismatch => {
            Some(compare::bless(&expected.text, actual, placeholders))
        }
        None if add_missing && r.verdict == Verdict::Pass && !actual.is_empty() => {
            Some(compare::bless("", actual, placeholders))
        }
        _ => None,
    }
}

/// Each line of `content` behind `indent`.
fn indented(content: &str, indent: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| format!("{indent}{line}"))
        .collect()
}

/// The lesson with its outputs blessed, or `None` when nothing changes.
pub fn lesson(
    lesson: &Lesson,
    result: &LessonResult,
    host: &str,
    add_missing: bool,
) -> Option<Blessed> {
    let mut edits: Vec<(usize, String)> = Vec::new();
    for p in &result.cells {
        let placeholders = Placeholders { host, port: None };
        if let Some(text) = new_output(lesson, &p.result, placeholders, add_missing) {
            edits.push((p.result.cell, text));
        }
    }
    for e in &result.exercises {
        let placeholders = Placeholders { host, port: e.port };
        for c in &e.cells {
            if let Some(text) = new_output(lesson, c, placeholders, add_missing) {
                edits.push((c.cell, text));
            }
        }
    }
    if edits.is_empty() {
        return None;
    }
    let source = &lesson.source.text;
    let mut text = String::with_capacity(source.len());
    let edit = |i: usize| edits.iter().find(|(c, _)| *c == i).map(|(_, t)| t);
    for block in &lesson.blocks {
        let piece = &source[block.range.clone()];
        match block.kind {
            BlockKind::Output(i) if edit(i).is_some() => {
                // Keep both fence lines; the content takes the closing
                // fence's indentation (a block inside a list item).
                let lines: Vec<&str> = piece.split_inclusive('\n').collect();
                let (first, last) = (lines[0], lines[lines.len() - 1]);
                let indent: String = last.chars().take_while(|c| *c == ' ').collect();
                text.push_str(first);
                text.push_str(&indented(edit(i).expect("checked"), &indent));
                text.push_str(last);
            }
            BlockKind::Cell(i) if edit(i).is_some() && lesson.cell(i).expected.is_none() => {
                text.push_str(piece);
                let last = piece
                    .trim_end_matches('\n')
                    .rsplit('\n')
                    .next()
                    .unwrap_or("");
                let indent: String = last.chars().take_while(|c| *c == ' ').collect();
                if !piece.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("\n{indent}```output\n"));
                text.push_str(&indented(edit(i).expect("checked"), &indent));
                text.push_str(&format!("{indent}```\n"));
            }
            _ => text.push_str(piece),
        }
    }
    let mut cells: Vec<usize> = edits.iter().map(|(c, _)| lesson.cell(*c).line()).collect();
    cells.sort_unstable();
    Some(Blessed { text, cells })
}

/// Writes blessed lessons back, saying which cells changed.
pub fn write_back(
    lessons: &[Lesson],
    finished: &crate::outcome::Finished,
    host: &str,
    add_missing: bool,
) {
    for result in &finished.results {
        let Some(lesson) = lessons.iter().find(|l| l.path == result.path) else {
            continue;
        };
        let Some(blessed) = self::lesson(lesson, result, host, add_missing) else {
            continue;
        };
        match crate::lesson::save(&lesson.path, &blessed.text) {
            Ok(()) => {
                for line in blessed.cells {
                    eprintln!("blessed the output of {}:{line}", lesson.path.display());
                }
            }
            Err(e) => eprintln!("error: {}: {e}", lesson.path.display()),
        }
    }
}
