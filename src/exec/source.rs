//! The code handed to evcxr, pieced from segments, and the way back from its
//! line numbers to the lesson's: a student must read `lessons/07-sockets.md:64`,
//! not a line of a crate aula generated.

/// One compiler message, positioned in the lesson.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub level: String,
    pub code: Option<String>,
    pub message: String,
    /// 1-based lesson line and column of the primary span; `None` when the
    /// message points at code the student did not write.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Width of the primary span on its first line, at least 1.
    pub width: usize,
    pub label: String,
    pub help: Vec<String>,
}

#[derive(Debug, Clone)]
struct Segment {
    /// 1-based line of the evaluated code where the segment starts.
    start: usize,
    lines: usize,
    /// Lesson line of the segment's first line, for the student's own code.
    origin: Option<usize>,
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

    /// Appends `text`; `origin` is the lesson line of its first line.
    pub fn push(&mut self, text: &str, origin: Option<usize>) -> &mut Self {
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

    pub fn prepend(&mut self, text: &str, origin: Option<usize>) {
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

    /// The lesson line of a 1-based line of the evaluated code.
    pub fn lesson_line(&self, code_line: usize) -> Option<usize> {
        let s = self
            .segments
            .iter()
            .find(|s| (s.start..s.start + s.lines).contains(&code_line))?;
        Some(s.origin? + (code_line - s.start))
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
        let line = span.and_then(|s| self.lesson_line(s.start_line));
        Diagnostic {
            level: e.level().to_owned(),
            code: e.code().map(str::to_owned),
            message: e.message(),
            line,
            column: line.and(span.map(|s| s.start_column)),
            width: span
                .filter(|s| s.end_line == s.start_line && s.end_column > s.start_column)
                .map_or(1, |s| s.end_column - s.start_column),
            label: primary.map(|m| m.label.clone()).unwrap_or_default(),
            help: e.help(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_map_back_through_segments() {
        let mut map = SourceMap::new();
        map.push("prefix line\n", None)
            .push("a\nb\nc", Some(40))
            .push("suffix\n", None);
        assert_eq!(map.code(), "prefix line\na\nb\nc\nsuffix\n");
        let table = [
            (1, None),
            (2, Some(40)),
            (4, Some(42)),
            (5, None),
            (9, None),
        ];
        for (code_line, want) in table {
            assert_eq!(map.lesson_line(code_line), want, "line {code_line}");
        }
        map.prepend("mod m {\n}\n", None);
        assert_eq!(map.lesson_line(4), Some(40));
        assert_eq!(map.lesson_line(6), Some(42));
        assert_eq!(map.lesson_line(2), None);
    }
}
