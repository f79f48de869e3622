//! The code handed to evcxr, pieced from segments, and the way back from its
//! line numbers to the cells': a student must read `lessons/07-sockets.md:64`,
//! not a line of a crate aula generated.

use crate::observation::{At, Diagnostic};

/// Where a segment's first line comes from: a cell (by its index in the
/// lesson) and a 1-based line of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLine {
    pub cell: usize,
    pub line: usize,
}

#[derive(Debug, Clone)]
struct Segment {
    /// 1-based line of the evaluated code where the segment starts.
    start: usize,
    lines: usize,
    /// The cell line of the segment's first line, for the student's own code.
    origin: Option<CodeLine>,
}

#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    code: String,
    segments: Vec<Segment>,
}

fn line_count(text: &str) -> usize {
    text.lines().count().max(1)
}

fn with_newline(text: &str) -> String {
    let mut t = text.to_owned();
    if !t.ends_with('\n') {
        t.push('\n');
    }
    t
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `text`; `origin` is the cell line of its first line.
    pub fn push(&mut self, text: &str, origin: Option<CodeLine>) -> &mut Self {
        let text = with_newline(text);
        let start = self.code.lines().count() + 1;
        self.segments.push(Segment {
            start,
            lines: line_count(&text),
            origin,
        });
        self.code.push_str(&text);
        self
    }

    pub fn prepend(&mut self, text: &str, origin: Option<CodeLine>) {
        let text = with_newline(text);
        let lines = line_count(&text);
        for s in &mut self.segments {
            s.start += lines;
        }
        self.segments.insert(
            0,
            Segment {
                start: 1,
                lines,
                origin,
            },
        );
        self.code.insert_str(0, &text);
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// The cell line of a 1-based line of the evaluated code.
    pub fn cell_line(&self, code_line: usize) -> Option<CodeLine> {
        let s = self
            .segments
            .iter()
            .find(|s| (s.start..s.start + s.lines).contains(&code_line))?;
        let origin = s.origin?;
        Some(CodeLine {
            cell: origin.cell,
            line: origin.line + (code_line - s.start),
        })
    }

    pub fn diagnostics(&self, errors: &[evcxr::CompilationError]) -> Vec<Diagnostic> {
        errors
            .iter()
            .filter(|e| e.level() == "error")
            .map(|e| self.diagnostic(e))
            .collect()
    }

    fn diagnostic(&self, e: &evcxr::CompilationError) -> Diagnostic {
        let primary = e.primary_spanned_message();
        let span = primary.and_then(|m| m.span);
        let at = span.and_then(|s| {
            let place = self.cell_line(s.start_line)?;
            Some(At {
                cell: place.cell,
                line: place.line,
                column: s.start_column,
            })
        });
        Diagnostic {
            level: e.level().to_owned(),
            code: e.code().map(str::to_owned),
            message: e.message(),
            at,
            width: span
                .filter(|s| s.end_line == s.start_line && s.end_column > s.start_column)
                .map_or(1, |s| s.end_column - s.start_column),
            label: primary.map(|m| m.label.clone()).unwrap_or_default(),
            help: e.help().into_iter().map(fold_help).collect(),
        }
    }
}

/// A help message with rustc's suggested replacement folded in: evcxr gives
/// it after a blank line, which a report would show as a stray line.
fn fold_help(help: String) -> String {
    let Some((message, replacement)) = help.split_once("\n\n") else {
        return help;
    };
    let replacement = replacement.trim();
    if replacement.is_empty() || message.contains(&format!("`{replacement}`")) {
        message.to_owned()
    } else if replacement.contains('\n') {
        format!("{message}:\n{replacement}")
    } else {
        format!("{message}: `{replacement}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_folded_into_their_help() {
        let table = [
            ("plain help", "plain help"),
            (
                "a local variable with a similar name exists\n\nb",
                "a local variable with a similar name exists: `b`",
            ),
            ("consider borrowing: `&x`\n\n&x", "consider borrowing: `&x`"),
            ("add these\n\nuse a;\nuse b;", "add these:\nuse a;\nuse b;"),
        ];
        for (help, want) in table {
            assert_eq!(fold_help(help.to_owned()), want);
        }
    }

    #[test]
    fn lines_map_back_through_segments() {
        let mut map = SourceMap::new();
        let at = |line| Some(CodeLine { cell: 3, line });
        map.push("prefix line\n", None)
            .push("a\nb\nc", at(1))
            .push("suffix\n", None);
        assert_eq!(map.code(), "prefix line\na\nb\nc\nsuffix\n");
        let table = [(1, None), (2, at(1)), (4, at(3)), (5, None), (9, None)];
        for (code_line, want) in table {
            assert_eq!(map.cell_line(code_line), want, "line {code_line}");
        }
        map.prepend("mod m {\n}\n", None);
        assert_eq!(map.cell_line(4), at(1));
        assert_eq!(map.cell_line(6), at(3));
        assert_eq!(map.cell_line(2), None);
    }
}
