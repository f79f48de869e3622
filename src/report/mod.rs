//! Reports: what a run found, for people (`human`) and for scripts (`json`).

pub mod human;
pub mod json;

use std::fmt::Write as _;

use crate::exec::source::Diagnostic;
use crate::lesson::Lesson;

/// A compiler message the way rustc shows it, but pointing at the lesson:
///
/// ```text
/// error[E0425]: cannot find value `x` in this scope
///   --> lessons/07-sockets.md:64:5
///    |
/// 64 |     println!("{}", x);
///    |                    ^ not found in this scope
/// ```
pub fn render_diagnostic(d: &Diagnostic, lesson: &Lesson) -> String {
    let mut out = String::new();
    match &d.code {
        Some(code) => writeln!(out, "{}[{code}]: {}", d.level, d.message),
        None => writeln!(out, "{}: {}", d.level, d.message),
    }
    .ok();
    if let Some(line) = d.line {
        let column = d.column.unwrap_or(1);
        let gutter = " ".repeat(line.to_string().len());
        writeln!(out, "{gutter}--> {}:{line}:{column}", lesson.path.display()).ok();
        if let Some(text) = lesson.source_line(line) {
            writeln!(out, "{gutter} |").ok();
            writeln!(out, "{line} | {text}").ok();
            let pad: String = text
                .chars()
                .take(column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let label = if d.label.is_empty() {
                String::new()
            } else {
                format!(" {}", d.label)
            };
            writeln!(out, "{gutter} | {pad}{}{label}", "^".repeat(d.width.max(1))).ok();
        }
    }
    for help in &d.help {
        writeln!(out, "  = help: {}", help.replace('\n', "\n          ")).ok();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn diagnostics_point_at_the_lesson_line() {
        let src = "# t\n\n```rust\nlet a = 1;\nprintln!(\"{}\", x);\n```\n";
        let lesson = crate::lesson::parse(Path::new("lessons/l.md"), src).unwrap();
        let d = Diagnostic {
            level: "error".into(),
            code: Some("E0425".into()),
            message: "cannot find value `x` in this scope".into(),
            line: Some(5),
            column: Some(16),
            width: 1,
            label: "not found in this scope".into(),
            help: vec!["a local variable with a similar name exists: `a`".into()],
        };
        let text = render_diagnostic(&d, &lesson);
        assert_eq!(
            text,
            "error[E0425]: cannot find value `x` in this scope\n \
             --> lessons/l.md:5:16\n  |\n5 | println!(\"{}\", x);\n  |                \
             ^ not found in this scope\n  = help: a local variable with a similar name exists: `a`\n"
        );
    }
}
