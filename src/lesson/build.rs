//! The format-neutral builder: items from a front end become cells and
//! exercises, with every error of the lesson found before anything compiles,
//! so a typo such as `serer` never silently turns an exercise into a plain
//! cell.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::crates::{self, Dep};
use super::{
    Block, BlockKind, Cell, CellKind, DEFAULT_POINTS, DEFAULT_TIMEOUT, Exercise, Expected, Item,
    Lang, Lesson, LessonError, Origin, Region, SourceFile, WireFault,
};

/// What an info string says, before cells are tied into exercises.
#[derive(Debug, Default, PartialEq)]
struct Attributes {
    lang: Lang,
    ignore: bool,
    server: bool,
    client: bool,
    hidden: bool,
    exercise: Option<String>,
    timeout: Option<Duration>,
    points: Option<u32>,
    /// (1.2) On a server: its clients start together.
    concurrent: bool,
    /// (1.2) On a client: faults on the wire.
    wire: Option<Vec<WireFault>>,
}

const FLAGS: &[&str] = &["ignore", "server", "client", "hidden", "concurrent"];
const KEYS: &[&str] = &["exercise", "timeout", "points", "wire"];

/// A close known word for a typo, as rustc suggests names. The one
/// suggester of aula: attributes, exercise IDs and `--exercise` use it.
pub fn suggest(word: &str, known: &[&str]) -> Option<String> {
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
    let lang = if language == "python" || language == "python3" {
        // A Python block without attributes is an example in the prose.
        if tokens(info).nth(1).is_none() {
            return Ok(None);
        }
        Lang::Python
    } else if !language.starts_with("rust") {
        return Ok(None);
    } else if language != "rust" {
        return Err(format!(
            "unknown cell language `{language}` (did you mean `rust`?)"
        ));
    } else {
        Lang::Rust
    };
    let mut attrs = Attributes {
        lang,
        ..Attributes::default()
    };
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
            ("concurrent", None) => attrs.concurrent = true,
            ("wire", Some(faults)) => attrs.wire = Some(super::wire::parse(faults)?),
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
                let mut msg = format!("unknown attribute `{word}` in a {language} cell");
                if let Some(hint) = hint {
                    msg.push_str(&format!(" (did you mean `{hint}`?)"));
                } else {
                    msg.push_str(
                        "; known: ignore, server, client, hidden, concurrent, exercise=ID, timeout=SECS, points=N, wire=FAULTS",
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
    if a.lang == Lang::Python && !(a.server || a.client) {
        return Err(
            "a python cell is an exercise's peer: write `python,server,exercise=ID` or `python,client,exercise=ID` (a python block with no attributes is prose)"
                .to_owned(),
        );
    }
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
    if a.wire.is_some() && !a.client {
        return Err(
            "`wire=` applies to client cells only: the faults are on what a client sends"
                .to_owned(),
        );
    }
    if a.concurrent && !a.server {
        return Err("`concurrent` is written on the exercise's server cell".to_owned());
    }
    Ok(())
}

const BEGIN: &str = "// BEGIN SOLUTION";
const END: &str = "// END SOLUTION";

/// The solution regions of a cell's code, or what is wrong with its markers
/// (1-based code lines).
fn regions(code: &str) -> Result<Vec<Region>, Vec<(usize, String)>> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let mut open: Option<usize> = None;
    for (i, line) in code.lines().enumerate() {
        let n = i + 1;
        match line.trim() {
            BEGIN => match open {
                Some(first) => errors.push((
                    n,
                    format!(
                        "`{BEGIN}` inside the region opened at line {first}; regions do not nest"
                    ),
                )),
                None => open = Some(n),
            },
            END => match open.take() {
                Some(begin) => found.push(Region { begin, end: n }),
                None => errors.push((n, format!("`{END}` with no `{BEGIN}` before it"))),
            },
            _ => {}
        }
    }
    if let Some(begin) = open {
        errors.push((begin, format!("`{BEGIN}` is never closed by `{END}`")));
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// What the previous fenced block was, so an `output` block knows its cell.
enum Prev {
    None,
    Cell,
    Output(usize),
    Other(String),
    /// A cell with a bad info string: already an error, so its output
    /// block is not a second one.
    Broken,
}

/// Every error of a lesson, each at its line.
struct Errors {
    path: std::path::PathBuf,
    list: Vec<LessonError>,
}

impl Errors {
    fn at(&mut self, line: usize, message: String) {
        self.list.push(LessonError {
            path: self.path.clone(),
            line: Some(line),
            cell: None,
            message,
        });
    }
}

/// A hint found after a cell: the cell's index, the hint's line, its text
/// and its range, to tie to the cell's exercise once exercises are formed.
type FoundHint = (usize, usize, String, Range<usize>);

/// What the pass over a front end's items finds.
#[derive(Default)]
struct Found {
    cells: Vec<Cell>,
    /// `timeout=` and `points=` of each exercise's server cell.
    exercise_attrs: BTreeMap<String, (Option<Duration>, Option<u32>, bool)>,
    /// Ranges of the file that are cells, outputs and hints.
    marked: Vec<(Range<usize>, BlockKind)>,
    hints: Vec<FoundHint>,
}

/// Forms a lesson from a front end's items. Collects every error rather than
/// stopping at the first, so an author fixes them in one pass.
pub fn build(source: Arc<SourceFile>, items: Vec<Item>) -> Result<Lesson, Vec<LessonError>> {
    let mut errors = Errors {
        path: source.path.clone(),
        list: Vec::new(),
    };
    let mut found = cells(&source, items, &mut errors);
    let crates = crates(&mut found.cells, &mut errors);
    let mut exercises = exercises(&found, &mut errors);
    attach_hints(&mut found, &mut exercises, &mut errors);
    if !errors.list.is_empty() {
        errors.list.sort_by_key(|e| e.line);
        return Err(errors.list);
    }
    let blocks = cover(source.text.len(), found.marked);
    Ok(Lesson {
        path: source.path.clone(),
        source,
        blocks,
        cells: found.cells,
        exercises,
        crates,
        conceal_hidden: false,
    })
}

/// Every Rust cell of a file that need not be a whole lesson (a student's
/// submission, graded for the cells it has), with the errors that would stop
/// [`build`].
pub fn cells_only(source: Arc<SourceFile>, items: Vec<Item>) -> (Vec<Cell>, Vec<LessonError>) {
    let mut errors = Errors {
        path: source.path.clone(),
        list: Vec::new(),
    };
    let mut found = cells(&source, items, &mut errors);
    crates(&mut found.cells, &mut errors);
    (found.cells, errors.list)
}

/// The blocks of a file that need not be a valid lesson: its cells and
/// their outputs where their info strings parse, prose around them. What
/// `aula convert` cuts a file into.
pub fn blocks_only(source: Arc<SourceFile>, items: Vec<Item>) -> Vec<Block> {
    let mut errors = Errors {
        path: source.path.clone(),
        list: Vec::new(),
    };
    let found = cells(&source, items, &mut errors);
    cover(source.text.len(), found.marked)
}

/// An `output` block: the expected output of the Rust cell just before it,
/// or an error saying what it follows instead. Returns what the next block
/// follows.
fn output_block(
    found: &mut Found,
    prev: Prev,
    block: (Range<usize>, usize, &str, String),
    errors: &mut Errors,
) -> Prev {
    let (range, line, info, code) = block;
    if let Some(extra) = tokens(info).nth(1) {
        errors.at(
            line,
            format!("an `output` block takes no attributes (found `{extra}`)"),
        );
    }
    match &prev {
        Prev::Cell => {
            let index = found.cells.len() - 1;
            found.cells[index].expected = Some(Expected { line, text: code });
            found.marked.push((range, BlockKind::Output(index)));
            return Prev::Output(line);
        }
        Prev::Output(first) => errors.at(
            line,
            format!(
                "a second `output` block for the cell whose output is at line {first}; a cell has one"
            ),
        ),
        Prev::Other(lang) => errors.at(
            line,
            format!("an `output` block must follow a rust cell, not a `{lang}` block"),
        ),
        Prev::Broken => {}
        Prev::None => errors.at(
            line,
            "an `output` block with no code cell before it".to_owned(),
        ),
    }
    prev
}

/// What a cell is from its attributes; a server cell's carry its
/// exercise's `timeout=`, `points=` and `concurrent`.
fn cell_kind(found: &mut Found, attrs: &Attributes) -> CellKind {
    match (attrs.exercise.clone(), attrs.server, attrs.client) {
        (Some(exercise), true, _) => {
            found.exercise_attrs.insert(
                exercise.clone(),
                (attrs.timeout, attrs.points, attrs.concurrent),
            );
            CellKind::Server { exercise }
        }
        (Some(exercise), _, true) => CellKind::Client {
            exercise,
            hidden: attrs.hidden,
            wire: attrs.wire.clone().unwrap_or_default(),
        },
        _ if attrs.ignore => CellKind::Ignored,
        _ => CellKind::Plain,
    }
}

/// A cell's solution regions, each error at its line; regions belong only
/// in an exercise's server or client cells.
fn cell_regions(code: &str, kind: &CellKind, line: usize, errors: &mut Errors) -> Vec<Region> {
    let regions = match regions(code) {
        Ok(regions) => regions,
        Err(bad) => {
            for (n, message) in bad {
                errors.at(line + n, message);
            }
            Vec::new()
        }
    };
    if !regions.is_empty() && !matches!(kind, CellKind::Server { .. } | CellKind::Client { .. }) {
        errors.at(
            line + regions[0].begin,
            "a solution region belongs in a server or client cell, not in a plain cell".to_owned(),
        );
    }
    regions
}

/// The cells, their `output` blocks and the hints that follow them, in file
/// order.
fn cells(source: &Arc<SourceFile>, items: Vec<Item>, errors: &mut Errors) -> Found {
    let mut found = Found::default();
    let mut prev = Prev::None;
    // The last cell with no heading or other cell since: where a hint belongs.
    let mut hint_anchor: Option<usize> = None;
    for item in items {
        let (range, line, info, code) = match item {
            Item::Heading { .. } => {
                hint_anchor = None;
                continue;
            }
            Item::Hint { range, line, text } => {
                if let Some(cell) = hint_anchor.take() {
                    found.hints.push((cell, line, text, range));
                }
                continue;
            }
            Item::Code {
                range,
                line,
                info,
                code,
            } => (range, line, info, code),
        };
        let first = tokens(&info).next().unwrap_or("");
        if first == "output" {
            prev = output_block(&mut found, prev, (range, line, &info, code), errors);
            continue;
        }
        hint_anchor = None;
        let attrs = match parse_info(&info) {
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
                errors.at(line, message);
                prev = Prev::Broken;
                continue;
            }
        };
        let kind = cell_kind(&mut found, &attrs);
        let regions = cell_regions(&code, &kind, line, errors);
        let index = found.cells.len();
        found.marked.push((range, BlockKind::Cell(index)));
        found.cells.push(Cell {
            origin: Origin {
                source: Arc::clone(source),
                line,
            },
            code,
            kind,
            lang: attrs.lang,
            expected: None,
            regions,
        });
        prev = Prev::Cell;
        hint_anchor = Some(index);
    }
    found
}

/// The `:dep` lines of the Rust cells, taken out of their code, in file
/// order; a crate declared twice alike counts once.
fn crates(cells: &mut [Cell], errors: &mut Errors) -> Vec<Dep> {
    let mut deps: Vec<Dep> = Vec::new();
    for cell in cells.iter_mut() {
        if cell.lang != Lang::Rust || cell.kind == CellKind::Ignored {
            continue;
        }
        let (found, bad) = crates::take_deps(&mut cell.code, cell.kind == CellKind::Plain);
        for (n, message) in bad {
            errors.at(cell.line() + n, message);
        }
        for (n, name, spec) in found {
            let line = cell.line() + n;
            match deps.iter().find(|d| d.name == name) {
                Some(d) if d.spec == spec => {}
                Some(d) => errors.at(
                    line,
                    format!(
                        "`:dep {name}` again, as `{spec}`; line {} has it as `{}`",
                        d.line, d.spec
                    ),
                ),
                None => deps.push(Dep { name, spec, line }),
            }
        }
    }
    deps
}

/// Exercises in the order of their server cells, each with its clients in
/// file order.
fn exercises(found: &Found, errors: &mut Errors) -> Vec<Exercise> {
    let cells = &found.cells;
    let mut exercises: Vec<Exercise> = Vec::new();
    for (index, cell) in cells.iter().enumerate() {
        if let CellKind::Server { exercise } = &cell.kind {
            if let Some(first) = exercises.iter().find(|e| &e.id == exercise) {
                errors.at(
                    cell.line(),
                    format!(
                        "exercise `{exercise}` has a second server cell; its server is at line {}",
                        first.line
                    ),
                );
                continue;
            }
            let (timeout, points, concurrent) = found
                .exercise_attrs
                .get(exercise)
                .cloned()
                .unwrap_or_default();
            exercises.push(Exercise {
                id: exercise.clone(),
                line: cell.line(),
                server: index,
                clients: Vec::new(),
                timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
                points: points.unwrap_or(DEFAULT_POINTS),
                concurrent,
                hint: None,
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
                    errors.at(cell.line(), msg);
                }
            }
        }
    }
    for ex in &exercises {
        if ex.clients.is_empty() {
            errors.at(
                ex.line,
                format!(
                    "exercise `{}` has a server but no client; add a `rust,client,exercise={}` cell",
                    ex.id, ex.id
                ),
            );
        }
    }
    exercises
}

/// Ties each hint to the exercise of the cell it follows: after the
/// exercise's last cell, one per exercise.
fn attach_hints(found: &mut Found, exercises: &mut [Exercise], errors: &mut Errors) {
    let cells = &found.cells;
    for (cell, line, text, range) in std::mem::take(&mut found.hints) {
        let Some(id) = cells[cell].exercise() else {
            continue;
        };
        let Some(at) = exercises.iter().position(|e| e.id == id) else {
            continue;
        };
        let ex = &mut exercises[at];
        let last = ex.cells().map(|i| cells[i].line()).max().unwrap_or(0);
        if cells[cell].line() < last {
            errors.at(
                line,
                format!("the hint of exercise `{id}` goes after its last cell (line {last})"),
            );
        } else if ex.hint.is_some() {
            errors.at(
                line,
                format!("exercise `{id}` has a second hint; an exercise has one"),
            );
        } else {
            ex.hint = Some(text);
            found.marked.push((range, BlockKind::Hint(at)));
        }
    }
}

/// Blocks covering `0..len`: the marked ranges, and prose between them.
fn cover(len: usize, mut marked: Vec<(Range<usize>, BlockKind)>) -> Vec<Block> {
    marked.sort_by_key(|(r, _)| r.start);
    let mut blocks = Vec::new();
    let mut at = 0;
    for (range, kind) in marked {
        if range.start > at {
            blocks.push(Block {
                range: at..range.start,
                kind: BlockKind::Prose,
            });
        }
        at = range.end;
        blocks.push(Block { range, kind });
    }
    if at < len {
        blocks.push(Block {
            range: at..len,
            kind: BlockKind::Prose,
        });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::super::{discover, load, parse};
    use super::*;
    use std::path::Path;

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
        let lines: Vec<usize> = lesson.cells.iter().map(|c| c.line()).collect();
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
        assert_eq!(lesson.cells[1].line(), 13);
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

    #[test]
    fn solution_regions_are_found_and_bad_markers_name_their_line() {
        let src = "```rust,server,exercise=e\na();\n  // BEGIN SOLUTION\n  b();\n  // END SOLUTION\n```\n```rust,client,exercise=e\n```\n";
        let lesson = parse_str(src).unwrap();
        assert_eq!(lesson.cells[0].regions, vec![Region { begin: 2, end: 4 }]);
        let table: &[(&str, &str)] = &[
            (
                "```rust,server,exercise=e\n// BEGIN SOLUTION\n```\n```rust,client,exercise=e\n```\n",
                "l.md:2: `// BEGIN SOLUTION` is never closed",
            ),
            (
                "```rust,server,exercise=e\nx\n// END SOLUTION\n```\n```rust,client,exercise=e\n```\n",
                "l.md:3: `// END SOLUTION` with no `// BEGIN SOLUTION` before it",
            ),
            (
                "```rust,server,exercise=e\n// BEGIN SOLUTION\n// BEGIN SOLUTION\n// END SOLUTION\n```\n```rust,client,exercise=e\n```\n",
                "l.md:3: `// BEGIN SOLUTION` inside the region opened at line 1",
            ),
            (
                "```rust\n// BEGIN SOLUTION\n// END SOLUTION\n```\n",
                "l.md:2: a solution region belongs in a server or client cell",
            ),
        ];
        for (src, want) in table {
            let got = all_errors(src);
            assert!(got.contains(want), "got `{got}`, want `{want}`");
        }
    }

    #[test]
    fn a_hint_after_the_last_cell_belongs_to_the_exercise() {
        let src = "```rust,server,exercise=e\n```\n```rust,client,exercise=e\n```\n```output\nx\n```\n\n<details>\n<summary>Dica</summary>\n\nTry `read`.\n</details>\n";
        let lesson = parse_str(src).unwrap();
        assert_eq!(lesson.exercises[0].hint.as_deref(), Some("Try `read`."));
        // After a heading, the details block is prose.
        let src = "```rust,server,exercise=e\n```\n```rust,client,exercise=e\n```\n\n# Next\n\n<details><summary>Dica</summary>x</details>\n";
        assert_eq!(parse_str(src).unwrap().exercises[0].hint, None);
        let src = "```rust,server,exercise=e\n```\n\n<details><summary>Hint</summary>x</details>\n\n```rust,client,exercise=e\n```\n";
        assert!(
            all_errors(src).contains("l.md:4: the hint of exercise `e` goes after its last cell")
        );
    }

    /// Every lesson and fixture of the repository, written back from its
    /// blocks, is the file it was read from.
    #[test]
    fn dep_lines_are_the_lessons_crates_and_later_cells_see_them() {
        let src = "# T\n\n```rust\nfn before() {}\n```\n\n```rust\n:dep tokio = \"1\"\n:dep rand = \"0.8\"\nfn after() {}\n```\n\n```rust,server,exercise=e\n```\n\n```rust,client,exercise=e\n```\n\n```rust\n:dep tokio = \"1\"\n```\n";
        let lesson = parse_str(src).unwrap();
        let names: Vec<(&str, usize)> = lesson
            .crates
            .iter()
            .map(|d| (d.name.as_str(), d.line))
            .collect();
        assert_eq!(names, [("tokio", 8), ("rand", 9)]);
        assert_eq!(lesson.cells[1].code, "\n\nfn after() {}\n");
        assert!(lesson.crates_of_cell(0).is_empty());
        assert_eq!(lesson.crates_of_cell(1).len(), 2);
        assert_eq!(lesson.crates_of(&lesson.exercises[0]).len(), 2);
        let twice = format!("{src}\n```rust\n:dep rand = \"0.9\"\n```\n");
        let e = all_errors(&twice);
        assert!(
            e.contains("`:dep rand` again, as `\"0.9\"`; line 9 has it as `\"0.8\"`"),
            "{e}"
        );
        let in_server = "# T\n\n```rust,server,exercise=e\n:dep rand = \"1\"\n```\n\n```rust,client,exercise=e\n```\n";
        assert!(
            all_errors(in_server).contains("l.md:4:"),
            "{}",
            all_errors(in_server)
        );
    }

    #[test]
    fn every_lesson_and_fixture_is_written_back_byte_for_byte() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in ["lessons", "tests/fixtures", "tests/fixtures/grade"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "md") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let lesson = parse(&path, &text).unwrap_or_else(|e| panic!("{e:?}"));
                assert_eq!(lesson.write_back(), text, "{}", path.display());
                let mut at = 0;
                for b in &lesson.blocks {
                    assert_eq!(
                        b.range.start,
                        at,
                        "{}: blocks are contiguous",
                        path.display()
                    );
                    at = b.range.end;
                }
                seen += 1;
            }
        }
        assert!(seen >= 7, "only {seen} lessons found");
    }
}
