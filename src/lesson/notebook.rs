//! The notebook front end: a Jupyter notebook (nbformat 4) is read as the
//! Markdown lesson it stands for, and a lesson is written as a notebook.
//!
//! The two forms are one document: `aula convert` writes a notebook whose
//! Markdown form is, byte for byte, the file it came from. What Markdown has
//! and a notebook does not (the blank lines between blocks, a fence written
//! differently from its tags) is kept in cell metadata under `aula`, only
//! where it is not the default. A notebook is parsed through its Markdown
//! form, so the rules and errors are the Markdown lesson's; a map from that
//! form's lines back to the notebook's cells makes every message point at
//! `lesson.ipynb:cell 7:3`.
//!
//! Code cells take their role from their tags (`server`, `client`,
//! `exercise=ID`, `hidden`, `ignore`, `timeout=N`, `points=N`, and `python`
//! for a Python peer); an expected output is the raw cell tagged `output`
//! that follows. Markdown cells are prose, hints included.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::{Block, BlockKind, LessonError};

/// Where each notebook cell's text stands in the Markdown form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellMap {
    /// Per notebook cell (0-based here, 1-based when shown): the Markdown
    /// line its segment starts on, and the line its source's first line is.
    spans: Vec<(usize, usize)>,
}

/// A line of the Markdown form, as a place in the notebook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellPlace {
    /// 1-based cell number, as Jupyter shows the cell's position.
    pub cell: usize,
    /// 1-based line in the cell's source; `None` for the fence line that
    /// stands for the cell's tags.
    pub line: Option<usize>,
}

impl std::fmt::Display for CellPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "cell {}:{line}", self.cell),
            None => write!(f, "cell {}", self.cell),
        }
    }
}

impl CellMap {
    pub fn place(&self, line: usize) -> CellPlace {
        let at = self.spans.partition_point(|&(start, _)| start <= line);
        let Some(&(_, first)) = at.checked_sub(1).and_then(|i| self.spans.get(i)) else {
            return CellPlace {
                cell: 1,
                line: None,
            };
        };
        CellPlace {
            cell: at,
            line: (line >= first).then(|| line - first + 1),
        }
    }
}

const DEFAULT_GAP: &str = "\n";

/// Whether a path names a notebook.
pub fn is_notebook(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "ipynb")
}

fn source_text(cell: &Value) -> Option<String> {
    match cell.get("source")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| p.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|p| p.concat()),
        _ => None,
    }
}

fn tags(cell: &Value) -> Vec<String> {
    cell.pointer("/metadata/tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn aula_meta<'a>(cell: &'a Value, key: &str) -> Option<&'a Value> {
    cell.get("metadata")?.get("aula")?.get(key)
}

/// The info string a code cell's tags stand for.
fn info_of(tags: &[String]) -> String {
    let (lang, rest): (&str, Vec<&str>) = if tags.iter().any(|t| t == "python") {
        (
            "python",
            tags.iter()
                .map(String::as_str)
                .filter(|t| *t != "python")
                .collect(),
        )
    } else {
        ("rust", tags.iter().map(String::as_str).collect())
    };
    std::iter::once(lang)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(",")
}

/// The tags an info string stands for, the inverse of [`info_of`].
fn tags_of(info: &str) -> Vec<String> {
    let mut words = info
        .split([',', ' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned);
    let lang = words.next().unwrap_or_default();
    let rest: Vec<String> = words.collect();
    if lang == "python" || lang == "python3" {
        std::iter::once("python".to_owned()).chain(rest).collect()
    } else {
        rest
    }
}

/// The notebook's cells, when it is an nbformat 4 notebook; otherwise why
/// it is not one.
fn notebook_cells(nb: &Value) -> Result<&Vec<Value>, String> {
    match nb.get("nbformat").and_then(Value::as_u64) {
        Some(4) => {}
        Some(v) => {
            return Err(format!(
                "nbformat {v} is not supported; aula reads nbformat 4 notebooks"
            ));
        }
        None => return Err("not a notebook: no `nbformat` version".to_owned()),
    }
    nb.get("cells")
        .and_then(Value::as_array)
        .ok_or_else(|| "not a notebook: no `cells` list".to_owned())
}

/// The info string of the fence a cell becomes (`None` for prose), or why
/// the cell cannot be read. A raw cell tagged `output` with other tags is
/// still an output block, with the complaint in `complaint`.
fn fence_info(
    kind: &str,
    tags: &[String],
    complaint: &mut Option<String>,
) -> Result<Option<String>, String> {
    Ok(match kind {
        "code" => Some(info_of(tags)),
        "raw" if tags.iter().any(|t| t == "output") => {
            if tags.len() > 1 {
                *complaint = Some("a raw cell tagged `output` takes no other tags".to_owned());
            }
            Some("output".to_owned())
        }
        "markdown" | "raw" => None,
        other => return Err(format!("unknown cell type `{other}`")),
    })
}

/// Writes a code or output cell as a fenced block: the fence as the
/// Markdown had it when it still says what the tags say, the source, and
/// the close, with the forms aula's metadata recorded (an empty block, a
/// fence left open at the end of the file).
fn push_fenced(text: &mut String, cell: &Value, source: &str, info: &str) {
    let fence = aula_meta(cell, "fence")
        .and_then(Value::as_str)
        .filter(|f| {
            let written = f.trim_start_matches([' ', '`', '~']);
            tags_of(written) == tags_of(info)
        })
        .map_or_else(|| format!("```{info}"), str::to_owned);
    let close = aula_meta(cell, "close")
        .and_then(Value::as_str)
        .unwrap_or("```");
    text.push_str(&fence);
    let empty = aula_meta(cell, "empty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // A lone fence at the end of the file: its line is all.
    if !(empty && close.is_empty()) {
        text.push('\n');
    }
    if !empty {
        text.push_str(source);
    }
    // A fence left open at the end of the file has no close.
    if !close.is_empty() {
        if !empty {
            text.push('\n');
        }
        text.push_str(close);
    }
}

/// A notebook's Markdown form and the map of its cells, or why it is not a
/// lesson (at `file:cell N` where a cell is to blame).
pub fn to_markdown(path: &Path, json_text: &str) -> Result<(String, CellMap), Vec<LessonError>> {
    let error = |cell: Option<usize>, message: String| LessonError {
        path: path.to_path_buf(),
        line: None,
        cell: cell.map(|cell| CellPlace { cell, line: None }),
        message,
    };
    let nb: Value = serde_json::from_str(json_text)
        .map_err(|e| vec![error(None, format!("not a notebook: invalid JSON ({e})"))])?;
    let cells = notebook_cells(&nb).map_err(|message| vec![error(None, message)])?;
    let mut text = nb
        .pointer("/metadata/aula/lead")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut spans = Vec::new();
    let mut errors = Vec::new();
    // The line the next cell starts on, kept as text grows.
    let mut line = text.matches('\n').count() + 1;
    let mut counted = text.len();
    for (i, cell) in cells.iter().enumerate() {
        let n = i + 1;
        line += text[counted..].matches('\n').count();
        counted = text.len();
        let Some(source) = source_text(cell) else {
            errors.push(error(Some(n), "the cell has no text `source`".to_owned()));
            continue;
        };
        let start = line;
        let kind = cell.get("cell_type").and_then(Value::as_str).unwrap_or("");
        let mut complaint = None;
        let fenced = fence_info(kind, &tags(cell), &mut complaint);
        errors.extend(complaint.map(|m| error(Some(n), m)));
        let fenced = match fenced {
            Ok(fenced) => fenced,
            Err(message) => {
                errors.push(error(Some(n), message));
                continue;
            }
        };
        let eol = aula_meta(cell, "eol")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        match fenced {
            None => {
                spans.push((start, start));
                text.push_str(&source);
            }
            Some(info) => {
                spans.push((start, start + 1));
                push_fenced(&mut text, cell, &source, &info);
            }
        }
        if eol {
            text.push('\n');
        }
        let last = i + 1 == cells.len();
        let gap = aula_meta(cell, "gap")
            .and_then(Value::as_str)
            .unwrap_or(if last { "" } else { DEFAULT_GAP });
        text.push_str(gap);
    }
    if errors.is_empty() {
        Ok((text, CellMap { spans }))
    } else {
        Err(errors)
    }
}

/// One notebook cell in the making.
struct Piece {
    cell: Value,
    /// Blank lines after it, before the next piece.
    gap: String,
}

/// Splits prose into blank lines before, the text, and blank lines after.
fn trim_blank_lines(prose: &str) -> (&str, &str, &str) {
    let is_blank = |line: &str| line.trim().is_empty();
    let mut start = 0;
    for line in prose.split_inclusive('\n') {
        if !is_blank(line) || !line.ends_with('\n') {
            break;
        }
        start += line.len();
    }
    let mut end = prose.len();
    while end > start {
        let before = &prose[start..end];
        let cut = before[..before.len() - 1]
            .rfind('\n')
            .map_or(start, |i| start + i + 1);
        let line = &prose[cut..end];
        if line.ends_with('\n') && is_blank(line) {
            end = cut;
        } else {
            break;
        }
    }
    (&prose[..start], &prose[start..end], &prose[end..])
}

fn cell_json(
    kind: &str,
    n: usize,
    source: &str,
    tags: &[String],
    aula: Map<String, Value>,
) -> Value {
    let mut metadata = Map::new();
    if !tags.is_empty() {
        metadata.insert("tags".into(), json!(tags));
    }
    if !aula.is_empty() {
        metadata.insert("aula".into(), Value::Object(aula));
    }
    let mut cell = json!({
        "cell_type": kind,
        "id": format!("cell-{n}"),
        "metadata": metadata,
        "source": source_lines(source),
    });
    if kind == "code" {
        cell["outputs"] = json!([]);
        cell["execution_count"] = Value::Null;
    }
    cell
}

/// nbformat's way: a list of lines, each with its newline but the last.
fn source_lines(source: &str) -> Value {
    json!(source.split_inclusive('\n').collect::<Vec<_>>())
}

/// The notebook's cells in the making, and the blank lines before the
/// first (the notebook's `lead`).
#[derive(Default)]
struct Pieces {
    pieces: Vec<Piece>,
    lead: String,
}

impl Pieces {
    /// Blank lines go to the gap after the last cell (or the lead), so a
    /// prose cell holds only its text, as Jupyter shows it.
    fn push_gap(&mut self, blank: &str) {
        match self.pieces.last_mut() {
            Some(p) => p.gap.push_str(blank),
            None => self.lead.push_str(blank),
        }
    }

    /// Prose gathered between two code or output blocks, as a markdown
    /// cell between the gaps its blank lines make; emptied.
    fn flush(&mut self, prose: &mut String) {
        if prose.is_empty() {
            return;
        }
        let (before, core, after) = trim_blank_lines(prose);
        self.push_gap(before);
        if core.is_empty() {
            // Only blank lines: they all belong to the gap.
            self.push_gap(after);
        } else {
            let (source, eol) = match core.strip_suffix('\n') {
                Some(s) => (s, true),
                None => (core, false),
            };
            let mut aula = Map::new();
            if !eol {
                aula.insert("eol".into(), json!(false));
            }
            let n = self.pieces.len() + 1;
            self.pieces.push(Piece {
                cell: cell_json("markdown", n, source, &[], aula),
                gap: after.to_owned(),
            });
        }
        prose.clear();
    }
}

/// A code or output block (`part`, fences and all) as the cell `n`, with
/// aula's metadata recording what the tags alone would not give back: the
/// fence and close as written, an empty block, a missing final newline.
fn fenced_cell(part: &str, kind: &str, tags: &[String], n: usize) -> Value {
    let (body, eol) = match part.strip_suffix('\n') {
        Some(b) => (b, true),
        None => (part, false),
    };
    let (fence, rest) = match body.split_once('\n') {
        Some((fence, rest)) => (fence, Some(rest)),
        None => (body, None),
    };
    // The closing fence is the last line, when the block has one.
    let (inner, close) = match rest {
        None => (None, ""),
        Some(rest) => match rest.rsplit_once('\n') {
            Some((inner, close)) if is_fence(close) => (Some(inner), close),
            None if is_fence(rest) => (None, rest),
            _ => (Some(rest), ""),
        },
    };
    let mut aula = Map::new();
    let info = if kind == "raw" {
        "output".to_owned()
    } else {
        info_of(tags)
    };
    if fence != format!("```{info}") {
        aula.insert("fence".into(), json!(fence));
    }
    if close != "```" {
        aula.insert("close".into(), json!(close));
    }
    let source = match inner {
        Some(s) => s,
        None => {
            aula.insert("empty".into(), json!(true));
            ""
        }
    };
    if !eol {
        aula.insert("eol".into(), json!(false));
    }
    cell_json(kind, n, source, tags, aula)
}

/// The finished pieces as a notebook for evcxr_jupyter's kernel: gaps that
/// differ from the default recorded on their cell, the lead on the
/// notebook.
fn notebook_json(pieces: Pieces) -> String {
    let Pieces { pieces, lead } = pieces;
    let count = pieces.len();
    let cells: Vec<Value> = pieces
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            let default = if i + 1 == count { "" } else { DEFAULT_GAP };
            if p.gap != default {
                p.cell["metadata"]["aula"]["gap"] = json!(p.gap);
            }
            p.cell
        })
        .collect();
    let mut metadata = json!({
        "kernelspec": {
            "display_name": "Rust",
            "language": "rust",
            "name": "rust",
        },
        "language_info": {
            "codemirror_mode": "rust",
            "file_extension": ".rs",
            "mimetype": "text/rust",
            "name": "Rust",
            "pygment_lexer": "rust",
            "version": "",
        },
    });
    if !lead.is_empty() {
        metadata["aula"] = json!({ "lead": lead });
    }
    let nb = json!({
        "cells": cells,
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    });
    write_json(&nb)
}

/// A Markdown lesson (its text and blocks) as a notebook with
/// evcxr_jupyter's kernel, so it opens in Jupyter with the Rust kernel; its
/// Markdown form is `text`, byte for byte.
pub fn from_markdown(text: &str, blocks: &[Block]) -> String {
    let mut pieces = Pieces::default();
    // Prose between the cells, gathered until the next cell or output.
    let mut prose = String::new();
    for block in blocks {
        let part = &text[block.range.clone()];
        let (kind, tags) = match block.kind {
            BlockKind::Prose | BlockKind::Hint(_) => {
                prose.push_str(part);
                continue;
            }
            BlockKind::Cell(_) => {
                let info = part.lines().next().unwrap_or_default();
                ("code", tags_of(info.trim_start_matches([' ', '`', '~'])))
            }
            BlockKind::Output(_) => ("raw", vec!["output".to_owned()]),
        };
        pieces.flush(&mut prose);
        let n = pieces.pieces.len() + 1;
        pieces.pieces.push(Piece {
            cell: fenced_cell(part, kind, &tags, n),
            gap: String::new(),
        });
    }
    pieces.flush(&mut prose);
    notebook_json(pieces)
}

/// Jupyter's own layout: one-space indents, keys in order, a final newline.
fn write_json(value: &Value) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).expect("a JSON value serializes");
    let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
    text.push('\n');
    text
}

fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// `aula convert`: the file at `path`, a lesson or a notebook, as Markdown
/// or (`to_notebook`) as a notebook. A file converts as it is, a whole
/// lesson or not (a submission, a lesson being written): only what it
/// holds is carried over.
pub fn convert(path: &Path, to_notebook: bool) -> Result<String, Vec<LessonError>> {
    let text = super::read_text(path).map_err(|e| vec![e])?;
    let markdown = if is_notebook(path) {
        to_markdown(path, &text)?.0
    } else {
        text
    };
    Ok(if to_notebook {
        from_markdown(&markdown, &super::blocks_of(path, &markdown))
    } else {
        markdown
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notebook(md: &str) -> String {
        from_markdown(md, &super::super::blocks_of(Path::new("l.md"), md))
    }

    fn round_trip(md: &str) -> String {
        let nb = notebook(md);
        let (back, _) = to_markdown(Path::new("l.ipynb"), &nb).unwrap();
        back
    }

    #[test]
    fn markdown_comes_back_byte_for_byte() {
        for md in [
            "# T\n\ntext\n\n```rust\nlet x = 1;\n```\n\n```output\n1\n```\n\nmore\n",
            "\n\n# lead\n```rust,server,exercise=e\nserver\n```\n```rust client exercise=e\n\n```\n~~~output\nx\n~~~\ntail",
            "```rust\n```\n\n\n   \n# x\n\n<details>\n<summary>Dica</summary>\nh\n</details>\n",
            "```python,client,exercise=e\nprint(1)\n```\n",
            "# open\n\n```rust\nlet x = 1;\n",
            "```rust\n",
        ] {
            assert_eq!(round_trip(md), md);
        }
    }

    #[test]
    fn tags_edited_in_jupyter_win_over_the_stored_fence() {
        let md = "```rust server exercise=e\ns\n```\n\n```rust,client,exercise=e\nc\n```\n";
        let mut nb: Value = serde_json::from_str(&notebook(md)).unwrap();
        nb["cells"][0]["metadata"]["tags"] = json!(["server", "exercise=f"]);
        let (back, _) = to_markdown(Path::new("l.ipynb"), &nb.to_string()).unwrap();
        assert!(
            back.starts_with("```rust,server,exercise=f\ns\n```\n"),
            "{back}"
        );
    }

    #[test]
    fn lines_of_the_markdown_form_are_cells_and_their_lines() {
        let md = "# T\n\ntext\n\n```rust\nlet x = 1;\nlet y = 2;\n```\n";
        let (_, map) = to_markdown(Path::new("l.ipynb"), &notebook(md)).unwrap();
        assert_eq!(map.place(3).to_string(), "cell 1:3");
        assert_eq!(map.place(5).to_string(), "cell 2");
        assert_eq!(map.place(7).to_string(), "cell 2:2");
    }

    #[test]
    fn what_is_not_a_notebook_says_why() {
        let bad = |text: &str| to_markdown(Path::new("x.ipynb"), text).unwrap_err()[0].to_string();
        assert!(bad("{").starts_with("x.ipynb: not a notebook: invalid JSON"));
        assert!(bad(r#"{"nbformat": 3, "cells": []}"#).contains("nbformat 3 is not supported"));
        let raw = r#"{"nbformat": 4, "cells": [{"cell_type": "markdown", "source": "x", "metadata": {}}, {"cell_type": "raw", "source": "y", "metadata": {"tags": ["output", "hidden"]}}]}"#;
        assert_eq!(
            bad(raw),
            "x.ipynb:cell 2: a raw cell tagged `output` takes no other tags"
        );
    }
}
