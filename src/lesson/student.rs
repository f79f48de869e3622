//! Student copies (LESSON-FORMAT.md 1.1): each solution region's lines
//! become one `todo!();` at the marker's indentation, hidden clients go with
//! their `output` blocks, and every other byte stays as it was.

use super::{BlockKind, Lesson};

/// The student copy of a lesson, as text.
pub fn copy(lesson: &Lesson) -> String {
    let text = &lesson.source.text;
    let mut out = String::with_capacity(text.len());
    for block in &lesson.blocks {
        let piece = &text[block.range.clone()];
        match block.kind {
            BlockKind::Cell(i) | BlockKind::Output(i) if lesson.cells[i].is_hidden() => {}
            BlockKind::Cell(i) if !lesson.cells[i].regions.is_empty() => {
                out.push_str(&blank_regions(piece, lesson, i));
            }
            _ => out.push_str(piece),
        }
    }
    out
}

/// The lesson with one exercise's solution regions back to `todo!();`, and
/// every other byte (hidden clients included) as it was; `None` when the
/// exercise has no region.
pub fn reset(lesson: &Lesson, exercise: &str) -> Option<String> {
    let ex = lesson.exercise(exercise)?;
    let cells: Vec<usize> = ex.cells().collect();
    if cells.iter().all(|&i| lesson.cells[i].regions.is_empty()) {
        return None;
    }
    let text = &lesson.source.text;
    let mut out = String::with_capacity(text.len());
    for block in &lesson.blocks {
        let piece = &text[block.range.clone()];
        match block.kind {
            BlockKind::Cell(i) if cells.contains(&i) && !lesson.cells[i].regions.is_empty() => {
                out.push_str(&blank_regions(piece, lesson, i));
            }
            _ => out.push_str(piece),
        }
    }
    Some(out)
}

/// A cell's fenced block with its regions emptied. Line `k` of the block is
/// line `k` of the code, the fence being line 0.
fn blank_regions(block: &str, lesson: &Lesson, cell: usize) -> String {
    let regions = &lesson.cells[cell].regions;
    let lines: Vec<&str> = block.split_inclusive('\n').collect();
    let mut out = String::with_capacity(block.len());
    for (k, line) in lines.iter().enumerate() {
        // The `todo!();` takes the place of the region's first line, or
        // stands alone before the END marker of an empty region.
        if let Some(r) = regions.iter().find(|r| k == r.begin + 1) {
            let marker = lines[r.begin];
            let indent: String = marker
                .chars()
                .take_while(|c| c.is_whitespace() && *c != '\n' && *c != '\r')
                .collect();
            let ending = if marker.ends_with("\r\n") {
                "\r\n"
            } else {
                "\n"
            };
            out.push_str(&indent);
            out.push_str("todo!();");
            out.push_str(ending);
        }
        if !regions.iter().any(|r| r.begin < k && k < r.end) {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn regions_become_todo_and_hidden_clients_go() {
        let src = "# T\n\n```rust,server,exercise=e\nlet a = 1;\n    // BEGIN SOLUTION\n    serve();\n    more();\n    // END SOLUTION\n```\n\n```output\nok\n```\n\n\
```rust,client,exercise=e\n// BEGIN SOLUTION\n// END SOLUTION\n```\n\n\
```rust,client,exercise=e,hidden\nsecret();\n```\n\n```output\nsecret out\n```\n\n<details><summary>Dica</summary>use loop</details>\n";
        let lesson = crate::lesson::parse(Path::new("l.md"), src).unwrap();
        let copy = copy(&lesson);
        assert_eq!(
            copy,
            "# T\n\n```rust,server,exercise=e\nlet a = 1;\n    // BEGIN SOLUTION\n    todo!();\n    // END SOLUTION\n```\n\n```output\nok\n```\n\n\
```rust,client,exercise=e\n// BEGIN SOLUTION\ntodo!();\n// END SOLUTION\n```\n\n\n\n<details><summary>Dica</summary>use loop</details>\n"
        );
        // A reset empties one exercise's regions and keeps hidden clients.
        let reset = reset(&lesson, "e").unwrap();
        assert!(reset.contains("    todo!();\n") && reset.contains("secret();"));
        assert!(!reset.contains("serve();"));
        // The copy is a lesson too, without the hidden client.
        let again = crate::lesson::parse(Path::new("l.md"), &copy).unwrap();
        assert_eq!(again.exercises[0].clients.len(), 1);
        assert_eq!(again.exercises[0].hint.as_deref(), Some("use loop"));
    }
}
