//! Lessons: the whole document as blocks, and the cells and exercises they
//! hold.
//!
//! A front end (Markdown today, `.ipynb` later) cuts a file into [`Item`]s;
//! the format-neutral builder in [`build`] validates them and forms cells and
//! exercises. Every cell carries an [`Origin`] (a file and a line), so a cell
//! spliced from another file (a student's submission) is still reported at
//! its own place. The blocks cover the file byte for byte, so a lesson can be
//! written back, or rewritten (student copies), without touching what aula
//! does not own.

mod build;
pub mod crates;
pub mod markdown;
pub mod notebook;
pub mod student;
pub mod wire;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use build::{build, suggest};
pub use crates::Dep;
pub use wire::WireFault;

/// Default wall-clock limit of an exercise (LESSON-FORMAT.md).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default points of an exercise (LESSON-FORMAT.md).
pub const DEFAULT_POINTS: u32 = 1;

/// A file that cells come from, with its text, for messages that quote it.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user named it (`lessons/07-sockets.md`).
    pub path: PathBuf,
    /// The lesson's Markdown form: the file itself, or a notebook's.
    pub text: String,
    /// For a notebook: where its cells stand in `text`.
    pub notebook: Option<notebook::CellMap>,
}

impl SourceFile {
    /// A line of `text` as a reader finds it: `12` in a Markdown file,
    /// `cell 7:3` in a notebook.
    pub fn place(&self, line: usize) -> String {
        match &self.notebook {
            Some(map) => map.place(line).to_string(),
            None => line.to_string(),
        }
    }

    /// `path:line`, or `path:cell N:L` in a notebook.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{}", self.path.display(), self.place(line))
    }

    /// The text of a 1-based line, for compiler messages.
    pub fn line(&self, line: usize) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)?)
    }
}

/// Where something stands: a file and a 1-based line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Arc<SourceFile>,
    pub line: usize,
}

impl Origin {
    pub fn path(&self) -> &Path {
        &self.source.path
    }

    /// `offset` lines further down the same file.
    pub fn down(&self, offset: usize) -> Origin {
        Origin {
            source: Arc::clone(&self.source),
            line: self.line + offset,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source.at(self.line))
    }
}

/// A piece of the document. Blocks are contiguous and cover the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Byte range in the file.
    pub range: Range<usize>,
    pub kind: BlockKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Text aula does not interpret, code blocks in other languages included.
    Prose,
    /// A cell, by its index in [`Lesson::cells`].
    Cell(usize),
    /// The `output` block of a cell.
    Output(usize),
    /// An exercise's hint, by the exercise's index.
    Hint(usize),
}

#[derive(Debug, Clone)]
pub struct Lesson {
    /// The path as the user named it, for messages (`lessons/07-sockets.md:64`).
    pub path: PathBuf,
    pub source: Arc<SourceFile>,
    pub blocks: Vec<Block>,
    /// Every Rust cell, in file order.
    pub cells: Vec<Cell>,
    /// Exercises in the order of their server cells.
    pub exercises: Vec<Exercise>,
    /// (1.2) The crates its plain cells' `:dep` lines declare, in file order.
    pub crates: Vec<Dep>,
    /// Whether reports name hidden clients only as "hidden test N" and keep
    /// their code, input and outputs to themselves (grading).
    pub conceal_hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The opening fence; the code's first line is one further down.
    pub origin: Origin,
    pub code: String,
    pub kind: CellKind,
    /// What runs the cell: evcxr, or `python3` for a peer cell.
    pub lang: Lang,
    pub expected: Option<Expected>,
    /// Solution regions, as 1-based lines of `code` holding the markers.
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub begin: usize,
    pub end: usize,
}

impl Cell {
    /// Line of the opening fence in its own file.
    pub fn line(&self) -> usize {
        self.origin.line
    }

    /// Where the code's first line stands.
    pub fn code_origin(&self) -> Origin {
        self.origin.down(1)
    }

    pub fn exercise(&self) -> Option<&str> {
        match &self.kind {
            CellKind::Server { exercise } | CellKind::Client { exercise, .. } => Some(exercise),
            _ => None,
        }
    }

    /// The faults on the wire of a client cell; none for any other.
    pub fn wire(&self) -> &[WireFault] {
        match &self.kind {
            CellKind::Client { wire, .. } => wire,
            _ => &[],
        }
    }

    pub fn is_hidden(&self) -> bool {
        matches!(self.kind, CellKind::Client { hidden: true, .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// 1-based line of the `output` block's opening fence.
    pub line: usize,
    pub text: String,
}

/// The language a cell runs in. Python cells are an exercise's peers only
/// (a server or a client), run by `python3` as a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Rust,
    Python,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellKind {
    Plain,
    Ignored,
    Server {
        exercise: String,
    },
    Client {
        exercise: String,
        hidden: bool,
        /// (1.2) Faults on what it sends, in the order written.
        wire: Vec<WireFault>,
    },
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
    /// (1.2) Its clients start together once the server is ready.
    pub concurrent: bool,
    /// The `<details>` hint after the exercise, as written between
    /// `</summary>` and `</details>`.
    pub hint: Option<String>,
}

impl Exercise {
    /// The server, then the clients: every cell of the exercise in run order.
    pub fn cells(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.server).chain(self.clients.iter().copied())
    }
}

/// A reason the lesson cannot run, pointing at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonError {
    pub path: PathBuf,
    /// `None` when the problem is the file itself (missing, unreadable).
    /// In a notebook, the line of its Markdown form.
    pub line: Option<usize>,
    /// In a notebook, the cell (and line) to blame.
    pub cell: Option<notebook::CellPlace>,
    pub message: String,
}

impl fmt::Display for LessonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.cell, self.line) {
            (Some(cell), _) => write!(f, "{}:{cell}: {}", self.path.display(), self.message),
            (None, Some(line)) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            (None, None) => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for LessonError {}

impl Lesson {
    pub fn cell(&self, index: usize) -> &Cell {
        &self.cells[index]
    }

    /// Plain cells above `line`, in order: what an exercise cell at `line` sees.
    pub fn plain_cells_above(&self, line: usize) -> impl Iterator<Item = (usize, &Cell)> {
        self.cells
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.kind == CellKind::Plain && c.line() < line)
    }

    /// The crates a cell whose code ends before `line` may use: those
    /// declared above it (evcxr adds a crate when its `:dep` line runs).
    pub fn crates_before(&self, line: usize) -> Vec<Dep> {
        self.crates
            .iter()
            .filter(|d| d.line < line)
            .cloned()
            .collect()
    }

    /// The crates an exercise's cells may use: as with the plain cells it
    /// replays, those above its last cell.
    pub fn crates_of(&self, ex: &Exercise) -> Vec<Dep> {
        let last = ex.cells().map(|i| self.cell(i).line()).max().unwrap_or(0);
        self.crates_before(last)
    }

    /// The crates a plain cell may use: its own `:dep` lines included.
    pub fn crates_of_cell(&self, index: usize) -> Vec<Dep> {
        let cell = self.cell(index);
        self.crates_before(cell.line() + cell.code.lines().count() + 1)
    }

    /// The text of a 1-based line of the lesson, for compiler messages.
    pub fn source_line(&self, line: usize) -> Option<&str> {
        self.source.line(line)
    }

    /// The file again, from its blocks: byte for byte what was read.
    pub fn write_back(&self) -> String {
        self.blocks
            .iter()
            .map(|b| &self.source.text[b.range.clone()])
            .collect()
    }

    pub fn exercise(&self, id: &str) -> Option<&Exercise> {
        self.exercises.iter().find(|e| e.id == id)
    }
}

/// Reads a lesson file. Unreadable or non-UTF-8 files are lesson errors, like
/// parse errors, so the caller reports them all the same way (exit status 2).
pub fn load(path: &Path) -> Result<Lesson, Vec<LessonError>> {
    let text = read_text(path).map_err(|e| vec![e])?;
    parse(path, &text)
}

/// A file's text, or why it cannot be a lesson.
pub fn read_text(path: &Path) -> Result<String, LessonError> {
    let bytes = std::fs::read(path).map_err(|e| LessonError {
        path: path.to_path_buf(),
        line: None,
        cell: None,
        message: describe_io_error(&e),
    })?;
    text_of(path, bytes)
}

/// Bytes read from `path` as a lesson's text, or why they cannot be one:
/// for readers that open the file their own way (`aula grade`).
pub fn text_of(path: &Path, bytes: Vec<u8>) -> Result<String, LessonError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        LessonError {
            path: path.to_path_buf(),
            line: Some(line),
            cell: None,
            message: "the file is not valid UTF-8; save it as UTF-8".to_owned(),
        }
    })
}

/// Saves a lesson's Markdown form at `path`: as it is, or as a notebook for
/// an `.ipynb` path.
pub fn save(path: &Path, markdown: &str) -> std::io::Result<()> {
    // Whole or not at all, keeping its permissions: an editor watching it
    // sees one change.
    crate::fs::write_atomically(path, file_text(path, markdown))
}

/// A file's text as a source: a notebook through its Markdown form.
fn source_of(path: &Path, text: &str) -> Result<Arc<SourceFile>, Vec<LessonError>> {
    let (text, notebook) = if notebook::is_notebook(path) {
        let (md, map) = notebook::to_markdown(path, text)?;
        (md, Some(map))
    } else {
        (text.to_owned(), None)
    };
    Ok(Arc::new(SourceFile {
        path: path.to_path_buf(),
        text,
        notebook,
    }))
}

/// Errors of a notebook's Markdown form, pointed at its cells.
fn in_cells(source: &SourceFile, mut errors: Vec<LessonError>) -> Vec<LessonError> {
    if let Some(map) = &source.notebook {
        for e in &mut errors {
            e.cell = e.line.map(|l| map.place(l));
        }
    }
    errors
}

/// The cells of a file that need not be a whole lesson, and the errors that
/// would stop [`parse`].
pub fn cells_of(path: &Path, text: &str) -> (Vec<Cell>, Vec<LessonError>) {
    let source = match source_of(path, text) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), e),
    };
    let (cells, errors) = build::cells_only(Arc::clone(&source), markdown::items(&source.text));
    (cells, in_cells(&source, errors))
}

/// The blocks of a Markdown text that need not be a whole lesson (see
/// `build::blocks_only`).
pub fn blocks_of(path: &Path, markdown: &str) -> Vec<Block> {
    let source = Arc::new(SourceFile {
        path: path.to_path_buf(),
        text: markdown.to_owned(),
        notebook: None,
    });
    build::blocks_only(source, markdown::items(markdown))
}

/// Parses a lesson's text: Markdown, or a notebook's JSON (by the path's
/// extension).
pub fn parse(path: &Path, text: &str) -> Result<Lesson, Vec<LessonError>> {
    let source = source_of(path, text)?;
    let items = markdown::items(&source.text);
    build(Arc::clone(&source), items).map_err(|e| in_cells(&source, e))
}

/// The file a lesson's Markdown form is saved as: the text itself, or a
/// notebook for an `.ipynb` path.
pub fn file_text(path: &Path, markdown: &str) -> String {
    if !notebook::is_notebook(path) {
        return markdown.to_owned();
    }
    notebook::from_markdown(markdown, &blocks_of(path, markdown))
}

pub fn describe_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".to_owned(),
        std::io::ErrorKind::IsADirectory => "is a folder, not a lesson file".to_owned(),
        _ => e.to_string(),
    }
}

/// Whether a file's name makes it a lesson: Markdown or a notebook.
pub fn has_lesson_extension(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md" || e == "ipynb")
}

/// The lesson files a command-line path names: the file itself, or the `.md`
/// files of a folder in file-name order (the format's lesson order).
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, LessonError> {
    let error = |message: String| LessonError {
        path: path.to_path_buf(),
        line: None,
        cell: None,
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
        if p.is_file() && has_lesson_extension(&p) {
            files.push(p);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(error(
            "the folder has no lesson (.md or .ipynb) files".to_owned(),
        ));
    }
    Ok(files)
}

/// Loads every lesson the paths name, or all the reasons they cannot run.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Lesson>, Vec<LessonError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match discover(path) {
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
        match load(&file) {
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

/// What a front end finds in a file, in file order, for the builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A fenced code block: any language, `output` blocks included.
    Code {
        range: Range<usize>,
        /// Line of the opening fence.
        line: usize,
        info: String,
        code: String,
    },
    /// A `<details>` block whose summary starts with `Dica` or `Hint`.
    Hint {
        range: Range<usize>,
        line: usize,
        text: String,
    },
    /// A heading: it ends the stretch where an exercise's hint may stand.
    Heading { range: Range<usize> },
}

impl Item {
    pub fn range(&self) -> &Range<usize> {
        match self {
            Item::Code { range, .. } | Item::Hint { range, .. } | Item::Heading { range } => range,
        }
    }
}
