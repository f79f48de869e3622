//! Lesson files → cells and exercises.
//!
//! Pure parsing over `&str`: the caller reads the file. Everything that makes a
//! lesson malformed is found here, before anything compiles, so a typo such as
//! `serer` never silently turns an exercise into a plain cell.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

/// Default wall-clock limit of an exercise (LESSON-FORMAT.md).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default points of an exercise (LESSON-FORMAT.md).
pub const DEFAULT_POINTS: u32 = 1;

#[derive(Debug, Clone)]
pub struct Lesson {
    /// The path as the user named it, for messages (`lessons/07-sockets.md:64`).
    pub path: PathBuf,
    pub source: String,
    /// Every fenced Rust cell, in file order.
    pub cells: Vec<Cell>,
    /// Exercises in the order of their server cells.
    pub exercises: Vec<Exercise>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// 1-based line of the opening fence; the code's first line is `line + 1`.
    pub line: usize,
    pub code: String,
    pub kind: CellKind,
    pub expected: Option<Expected>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// 1-based line of the `output` block's opening fence.
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellKind {
    Plain,
    Ignored,
    Server { exercise: String },
    Client { exercise: String, hidden: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exercise {
    pub id: String,
    /// Line of the server cell's opening fence: the exercise's line in reports.
    pub line: usize,
    /// Index into `Lesson::cells`.
    pub server: usize,
    /// Indices into `Lesson::cells`, in file order: the order they run in.
    pub clients: Vec<usize>,
    pub timeout: Duration,
    pub points: u32,
}

/// A reason the lesson cannot run, pointing at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonError {
    pub path: PathBuf,
    /// `None` when the problem is the file itself (missing, unreadable).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LessonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for LessonError {}

impl Lesson {
    pub fn cell(&self, index: usize) -> &Cell {
        &self.cells[index]
    }

    /// Plain cells above `line`, in order: what an exercise cell at `line` sees.
    pub fn plain_cells_above(&self, line: usize) -> impl Iterator<Item = &Cell> {
        self.cells
            .iter()
            .filter(move |c| c.kind == CellKind::Plain && c.line < line)
    }

    /// The text of a 1-based line of the lesson, for compiler messages.
    pub fn source_line(&self, line: usize) -> Option<&str> {
        self.source.lines().nth(line.checked_sub(1)?)
    }
}

/// Reads a lesson file. Unreadable or non-UTF-8 files are lesson errors, like
/// parse errors, so the caller reports them all the same way (exit status 2).
pub fn load(path: &Path) -> Result<Lesson, Vec<LessonError>> {
    let error = |line, message: String| {
        vec![LessonError {
            path: path.to_path_buf(),
            line,
            message,
        }]
    };
    let bytes = std::fs::read(path).map_err(|e| error(None, describe_io_error(&e)))?;
    let source = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(error(
                Some(line),
                "the file is not valid UTF-8; save it as UTF-8".to_owned(),
            ));
        }
    };
    parse(path, &source)
}

fn describe_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".to_owned(),
        std::io::ErrorKind::IsADirectory => "is a folder, not a lesson file".to_owned(),
        _ => e.to_string(),
    }
}

/// The lesson files a command-line path names: the file itself, or the `.md`
/// files of a folder in file-name order (the format's lesson order).
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, LessonError> {
    let error = |message: String| LessonError {
        path: path.to_path_buf(),
        line: None,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| error(describe_io_error(&e)))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| error(e.to_string()))? {
        let entry = entry.map_err(|e| error(e.to_string()))?;
        let p = entry.path();
        if p.is_file() && p.extension().is_some_and(|ext| ext == "md") {
            files.push(p);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(error("the folder has no lesson (.md) files".to_owned()));
    }
    Ok(files)
}

/// One fenced code block as the Markdown parser saw it.
struct Fence {
    line: usize,
    info: String,
    code: String,
}

fn fences(source: &str) -> Vec<Fence> {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset);

    let mut out = Vec::new();
    let mut current: Option<Fence> = None;
    for (event, range) in Parser::new(source).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                current = Some(Fence {
                    line: line_of(range.start),
                    info: info.to_string(),
                    code: String::new(),
                });
            }
            Event::Text(text) => {
                if let Some(fence) = current.as_mut() {
                    fence.code.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => out.extend(current.take()),
            _ => {}
        }
    }
    out
}

/// What an info string says, before cells are tied into exercises.
#[derive(Debug, Default, PartialEq)]
struct Attributes {
    ignore: bool,
    server: bool,
    client: bool,
    hidden: bool,
    exercise: Option<String>,
    timeout: Option<Duration>,
    points: Option<u32>,
}

const FLAGS: &[&str] = &["ignore", "server", "client", "hidden"];
const KEYS: &[&str] = &["exercise", "timeout", "points"];

/// A close known word for a typo, as rustc suggests names.
fn suggest(word: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && *d < k.len())
        .min()
        .map(|(_, k)| k.to_owned())
}

fn tokens(info: &str) -> impl Iterator<Item = &str> {
    info.split([',', ' ', '\t']).filter(|t| !t.is_empty())
}

/// `Ok(None)`: not a Rust cell (prose code in another language).
fn parse_info(info: &str) -> Result<Option<Attributes>, String> {
    let mut words = tokens(info);
    let Some(language) = words.next() else {
        return Ok(None);
    };
    if !language.starts_with("rust") {
        return Ok(None);
    }
    if language != "rust" {
        return Err(format!(
            "unknown cell language `{language}` (did you mean `rust`?)"
        ));
    }
    let mut attrs = Attributes::default();
    let mut seen = Vec::new();
    for word in words {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        if seen.contains(&key) {
            return Err(format!("attribute `{key}` is given twice"));
        }
        seen.push(key);
        match (key, value) {
            ("ignore", None) => attrs.ignore = true,
            ("server", None) => attrs.server = true,
            ("client", None) => attrs.client = true,
            ("hidden", None) => attrs.hidden = true,
            (flag, Some(_)) if FLAGS.contains(&flag) => {
                return Err(format!("attribute `{flag}` takes no value"));
            }
            ("exercise", Some(id)) => attrs.exercise = Some(parse_exercise_id(id)?),
            ("timeout", Some(secs)) => attrs.timeout = Some(parse_timeout(secs)?),
            ("points", Some(n)) => {
                attrs.points = Some(n.parse().map_err(|_| {
                    format!("`points={n}`: points must be a whole number, such as `points=2`")
                })?);
            }
            (k, None) if KEYS.contains(&k) => {
                return Err(format!("attribute `{k}` needs a value, as in `{k}=...`"));
            }
            (unknown, _) => {
                let hint = match value {
                    None => suggest(unknown, FLAGS)
                        .or_else(|| suggest(unknown, KEYS).map(|k| format!("{k}=..."))),
                    Some(_) => {
                        suggest(unknown, KEYS).map(|k| format!("{k}={}", value.unwrap_or_default()))
                    }
                };
                let mut msg = format!("unknown attribute `{word}` in a rust cell");
                if let Some(hint) = hint {
                    msg.push_str(&format!(" (did you mean `{hint}`?)"));
                } else {
                    msg.push_str(
                        "; known: ignore, server, client, hidden, exercise=ID, timeout=SECS, points=N",
                    );
                }
                return Err(msg);
            }
        }
    }
    check_combination(&attrs)?;
    Ok(Some(attrs))
}

fn parse_exercise_id(id: &str) -> Result<String, String> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "`exercise={id}`: an exercise ID is letters, digits, `-`, `_` and `.`"
        ))
    }
}

fn parse_timeout(secs: &str) -> Result<Duration, String> {
    match secs.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "`timeout={secs}`: the timeout is a number of seconds between 0 and 3600, such as `timeout=5`"
        )),
    }
}

fn check_combination(a: &Attributes) -> Result<(), String> {
    if a.server && a.client {
        return Err("a cell cannot be both `server` and `client`".to_owned());
    }
    let role = a.server || a.client;
    if a.ignore && (role || a.exercise.is_some()) {
        return Err(
            "an `ignore` cell is never run, so it cannot be part of an exercise".to_owned(),
        );
    }
    if role && a.exercise.is_none() {
        let which = if a.server { "server" } else { "client" };
        return Err(format!(
            "a `{which}` cell needs the exercise it belongs to, as in `rust,{which},exercise=ID`"
        ));
    }
    if !role && a.exercise.is_some() {
        return Err(
            "`exercise=` goes with `server` or `client`, as in `rust,server,exercise=ID`"
                .to_owned(),
        );
    }
    if !a.server && (a.timeout.is_some() || a.points.is_some()) {
        return Err(
            "`timeout=` and `points=` are written on the exercise's server cell".to_owned(),
        );
    }
    if a.hidden && !a.client {
        return Err("`hidden` applies to client cells only".to_owned());
    }
    Ok(())
}

/// Parses a lesson. Collects every error rather than stopping at the first,
/// so an author fixes them in one pass.
pub fn parse(path: &Path, source: &str) -> Result<Lesson, Vec<LessonError>> {
    let mut errors = Vec::new();
    let mut err = |line: usize, message: String| {
        errors.push(LessonError {
            path: path.to_path_buf(),
            line: Some(line),
            message,
        })
    };

    let mut cells: Vec<Cell> = Vec::new();
    let mut exercise_attrs: BTreeMap<String, (Option<Duration>, Option<u32>)> = BTreeMap::new();
    // What the previous fenced block was, so an `output` block knows its cell.
    enum Prev {
        None,
        Cell,
        Output(usize),
        Other(String),
        /// A cell with a bad info string: already an error, so its output
        /// block is not a second one.
        Broken,
    }
    let mut prev = Prev::None;

    for fence in fences(source) {
        let first = tokens(&fence.info).next().unwrap_or("");
        if first == "output" {
            if let Some(extra) = tokens(&fence.info).nth(1) {
                err(
                    fence.line,
                    format!("an `output` block takes no attributes (found `{extra}`)"),
                );
            }
            match &prev {
                Prev::Cell => {
                    let cell = cells.last_mut().expect("a cell precedes");
                    cell.expected = Some(Expected {
                        line: fence.line,
                        text: fence.code.clone(),
                    });
                    prev = Prev::Output(fence.line);
                }
                Prev::Output(line) => err(
                    fence.line,
                    format!(
                        "a second `output` block for the cell whose output is at line {line}; a cell has one"
                    ),
                ),
                Prev::Other(lang) => err(
                    fence.line,
                    format!("an `output` block must follow a rust cell, not a `{lang}` block"),
                ),
                Prev::Broken => {}
                Prev::None => err(
                    fence.line,
                    "an `output` block with no code cell before it".to_owned(),
                ),
            }
            continue;
        }
        let attrs = match parse_info(&fence.info) {
            Ok(Some(attrs)) => attrs,
            Ok(None) => {
                prev = Prev::Other(if first.is_empty() {
                    "plain".to_owned()
                } else {
                    first.to_owned()
                });
                continue;
            }
            Err(message) => {
                err(fence.line, message);
                prev = Prev::Broken;
                continue;
            }
        };
        let kind = match (attrs.exercise.clone(), attrs.server, attrs.client) {
            (Some(exercise), true, _) => {
                exercise_attrs.insert(exercise.clone(), (attrs.timeout, attrs.points));
                CellKind::Server { exercise }
            }
            (Some(exercise), _, true) => CellKind::Client {
                exercise,
                hidden: attrs.hidden,
            },
            _ if attrs.ignore => CellKind::Ignored,
            _ => CellKind::Plain,
        };
        cells.push(Cell {
            line: fence.line,
            code: fence.code,
            kind,
            expected: None,
        });
        prev = Prev::Cell;
    }

    let mut exercises: Vec<Exercise> = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        if let CellKind::Server { exercise } = &cell.kind {
            if let Some(first) = exercises.iter().find(|e| &e.id == exercise) {
                err(
                    cell.line,
                    format!(
                        "exercise `{exercise}` has a second server cell; its server is at line {}",
                        first.line
                    ),
                );
                continue;
            }
            let (timeout, points) = exercise_attrs.get(exercise).cloned().unwrap_or_default();
            exercises.push(Exercise {
                id: exercise.clone(),
                line: cell.line,
                server: index,
                clients: Vec::new(),
                timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
                points: points.unwrap_or(DEFAULT_POINTS),
            });
        }
    }
    for (index, cell) in cells.iter().enumerate() {
        if let CellKind::Client { exercise, .. } = &cell.kind {
            match exercises.iter_mut().find(|e| &e.id == exercise) {
                Some(ex) => ex.clients.push(index),
                None => {
                    let known: Vec<&str> = exercises.iter().map(|e| e.id.as_str()).collect();
                    let mut msg =
                        format!("client of exercise `{exercise}`, which has no server cell");
                    if let Some(s) = suggest(exercise, &known) {
                        msg.push_str(&format!(" (did you mean `exercise={s}`?)"));
                    }
                    err(cell.line, msg);
                }
            }
        }
    }
    for ex in &exercises {
        if ex.clients.is_empty() {
            err(
                ex.line,
                format!(
                    "exercise `{}` has a server but no client; add a `rust,client,exercise={}` cell",
                    ex.id, ex.id
                ),
            );
        }
    }

    if errors.is_empty() {
        Ok(Lesson {
            path: path.to_path_buf(),
            source: source.to_owned(),
            cells,
            exercises,
        })
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(src: &str) -> Result<Lesson, Vec<LessonError>> {
        parse(Path::new("l.md"), src)
    }

    fn all_errors(src: &str) -> String {
        let errors = parse_str(src).expect_err("should not parse");
        errors.iter().map(|e| format!("{e}\n")).collect()
    }

    const ECHO: &str = "# T\n\nprose\n\n```rust\nfn helper() {}\n```\n\n```output\n```\n\n\
```rust,server,exercise=echo,timeout=3,points=2\nserver();\n```\n\n```output\nConnected\n```\n\n\
```rust,client,exercise=echo\nclient();\n```\n\n```output\nReceived\n```\n";

    #[test]
    fn cells_keep_their_fence_lines_and_outputs() {
        let lesson = parse_str(ECHO).unwrap();
        let lines: Vec<usize> = lesson.cells.iter().map(|c| c.line).collect();
        assert_eq!(lines, vec![5, 12, 20]);
        assert_eq!(lesson.cells[0].kind, CellKind::Plain);
        assert_eq!(lesson.cells[0].code, "fn helper() {}\n");
        assert_eq!(lesson.cells[0].expected.as_ref().unwrap().text, "");
        assert_eq!(
            lesson.cells[1].expected,
            Some(Expected {
                line: 16,
                text: "Connected\n".into()
            })
        );
        let ex = &lesson.exercises[0];
        assert_eq!(ex.id, "echo");
        assert_eq!((ex.line, ex.server, ex.clients.clone()), (12, 1, vec![2]));
        assert_eq!(ex.timeout, Duration::from_secs(3));
        assert_eq!(ex.points, 2);
    }

    #[test]
    fn defaults_and_several_clients_in_file_order() {
        let src = "```rust,client,exercise=a\n1\n```\n```rust,server,exercise=a\n2\n```\n```rust,client,exercise=a\n3\n```\n";
        let lesson = parse_str(src).unwrap();
        let ex = &lesson.exercises[0];
        assert_eq!(ex.clients, vec![0, 2]);
        assert_eq!(ex.line, 4);
        assert_eq!(ex.timeout, DEFAULT_TIMEOUT);
        assert_eq!(ex.points, DEFAULT_POINTS);
    }

    #[test]
    fn info_strings_accept_commas_and_spaces() {
        let table: &[(&str, Option<Attributes>)] = &[
            ("rust", Some(Attributes::default())),
            (
                "rust,ignore",
                Some(Attributes {
                    ignore: true,
                    ..Default::default()
                }),
            ),
            (
                "rust server exercise=x",
                Some(Attributes {
                    server: true,
                    exercise: Some("x".into()),
                    ..Default::default()
                }),
            ),
            (
                "rust, client, exercise=x, hidden",
                Some(Attributes {
                    client: true,
                    hidden: true,
                    exercise: Some("x".into()),
                    ..Default::default()
                }),
            ),
            ("python", None),
            ("", None),
            ("text,server", None),
        ];
        for (info, want) in table {
            assert_eq!(parse_info(info).as_ref().ok(), Some(want), "info `{info}`");
        }
    }

    #[test]
    fn bad_info_strings_are_errors_with_suggestions() {
        let table: &[(&str, &str)] = &[
            ("rust,serer,exercise=x", "did you mean `server`?"),
            ("rust,client,exercise=x,hiden", "did you mean `hidden`?"),
            ("rust,server,exercize=x", "did you mean `exercise=x`?"),
            ("rust,ignored", "did you mean `ignore`?"),
            (
                "rust,server,exercise=x,timout=3",
                "did you mean `timeout=3`?",
            ),
            ("rust,foo", "known: ignore, server"),
            ("rustc", "unknown cell language `rustc`"),
            ("rust,server", "needs the exercise"),
            ("rust,exercise=x", "goes with `server` or `client`"),
            (
                "rust,server,client,exercise=x",
                "both `server` and `client`",
            ),
            (
                "rust,client,exercise=x,timeout=2",
                "written on the exercise's server",
            ),
            ("rust,server,exercise=x,timeout=0", "number of seconds"),
            ("rust,server,exercise=x,timeout=abc", "number of seconds"),
            ("rust,server,exercise=x,points=-1", "whole number"),
            ("rust,server,server,exercise=x", "given twice"),
            ("rust,ignore,server,exercise=x", "never run"),
            ("rust,hidden", "client cells only"),
            ("rust,server=1,exercise=x", "takes no value"),
            ("rust,server,exercise", "needs a value"),
            ("rust,server,exercise=a/b", "letters, digits"),
        ];
        for (info, want) in table {
            let got = parse_info(info).expect_err(info);
            assert!(
                got.contains(want),
                "info `{info}`: got `{got}`, want `{want}`"
            );
        }
    }

    #[test]
    fn malformed_lessons_name_the_line() {
        let table: &[(&str, &str)] = &[
            (
                "text\n\n```rust,serer,exercise=x\n```\n",
                "l.md:3: unknown attribute `serer` in a rust cell (did you mean `server`?)",
            ),
            (
                "```rust,client,exercise=echo\n```\n",
                "l.md:1: client of exercise `echo`, which has no server cell",
            ),
            (
                "```rust,server,exercise=e\n```\n```rust,client,exercise=e\n```\n```rust,server,exercise=e\n```\n",
                "l.md:5: exercise `e` has a second server cell; its server is at line 1",
            ),
            (
                "intro\n\n```output\nhi\n```\n",
                "l.md:3: an `output` block with no code cell before it",
            ),
            (
                "```python\nprint(1)\n```\n```output\n1\n```\n",
                "l.md:4: an `output` block must follow a rust cell, not a `python` block",
            ),
            (
                "```rust\n```\n```output\n```\n```output\n```\n",
                "l.md:5: a second `output` block",
            ),
            (
                "```rust,server,exercise=e\n```\n",
                "l.md:1: exercise `e` has a server but no client",
            ),
            (
                "```rust,server,exercise=echo\n```\n```rust,client,exercise=ecko\n```\n",
                "did you mean `exercise=echo`?",
            ),
        ];
        for (src, want) in table {
            let got = all_errors(src);
            assert!(got.contains(want), "got `{got}`, want `{want}`");
        }
    }

    #[test]
    fn all_errors_are_reported_in_line_order() {
        let src = "```rust,serer\n```\n\n```rust,clint\n```\n";
        let errors = parse_str(src).unwrap_err();
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(1), Some(4)]);
    }

    #[test]
    fn prose_between_a_cell_and_its_output_is_allowed_and_fences_in_lists_count() {
        let src = "```rust\nprintln!(\"a\");\n```\n\nIt prints:\n\n```output\na\n```\n\n- item\n\n  ```rust\n  let x = 1;\n  ```\n";
        let lesson = parse_str(src).unwrap();
        assert_eq!(lesson.cells[0].expected.as_ref().unwrap().text, "a\n");
        assert_eq!(lesson.cells[1].line, 13);
        assert_eq!(lesson.cells[1].code, "let x = 1;\n");
    }

    #[test]
    fn indented_and_foreign_code_blocks_are_not_cells() {
        let src = "    let indented = 1;\n\n```toml\n[x]\n```\n\n~~~rust\nlet tilde = 1;\n~~~\n";
        let lesson = parse_str(src).unwrap();
        assert_eq!(lesson.cells.len(), 1);
        assert_eq!(lesson.cells[0].code, "let tilde = 1;\n");
    }

    #[test]
    fn plain_cells_above_a_line() {
        let lesson = parse_str(ECHO).unwrap();
        assert_eq!(lesson.plain_cells_above(12).count(), 1);
        assert_eq!(lesson.plain_cells_above(5).count(), 0);
    }

    #[test]
    fn non_utf8_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.md");
        std::fs::write(&path, b"ok\nstill ok\nbad \xff here\n").unwrap();
        let errors = load(&path).unwrap_err();
        assert_eq!(errors[0].line, Some(3));
        assert!(errors[0].message.contains("UTF-8"));
        let missing = load(&dir.path().join("nope.md")).unwrap_err();
        assert!(
            missing[0]
                .to_string()
                .ends_with("nope.md: no such file or folder")
        );
    }

    #[test]
    fn folders_list_lessons_in_file_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["10-b.md", "02-a.md", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = discover(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["02-a.md", "10-b.md"]);
    }
}
