//! The Markdown front end: a CommonMark file (pulldown-cmark) cut into the
//! items the builder forms a lesson from.

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

use super::Item;

/// 1-based line of a byte offset.
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn of(text: &str) -> Lines {
        Lines(
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset)
    }
}

/// The summary's words with tags taken out: `<b>Dica</b> 1` → `Dica 1`.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// A hint starting at `start` (an HTML block that opens `<details>`): its
/// whole range up to the end of the `</details>` line, and its text.
fn hint_at(text: &str, start: usize) -> Option<(std::ops::Range<usize>, String)> {
    let rest = &text[start..];
    if !rest.trim_start().starts_with("<details") {
        return None;
    }
    let close = rest.find("</details>")?;
    let summary_open = rest[..close].find("<summary")?;
    let summary_start = summary_open + rest[summary_open..].find('>')? + 1;
    let summary_end = summary_start + rest[summary_start..close].find("</summary>")?;
    let summary = strip_tags(&rest[summary_start..summary_end]);
    let summary = summary.trim_start();
    if !(summary.starts_with("Dica") || summary.starts_with("Hint")) {
        return None;
    }
    let body = rest[summary_end + "</summary>".len()..close].trim();
    let after = start + close + "</details>".len();
    let end = text[after..]
        .find('\n')
        .map_or(text.len(), |i| after + i + 1);
    Some((start..end, body.to_owned()))
}

/// Fenced code blocks, hints and headings, in file order.
pub fn items(text: &str) -> Vec<Item> {
    let lines = Lines::of(text);
    let mut out = Vec::new();
    let mut code: Option<Item> = None;
    // Events inside a hint already taken whole are skipped.
    let mut skip_until = 0;
    for (event, range) in Parser::new(text).into_offset_iter() {
        if range.start < skip_until {
            continue;
        }
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                code = Some(Item::Code {
                    range: range.clone(),
                    line: lines.line(range.start),
                    info: info.to_string(),
                    code: String::new(),
                });
            }
            Event::Text(t) => {
                if let Some(Item::Code { code, .. }) = code.as_mut() {
                    code.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                // A block is its lines: the closing fence's line ending too.
                if let Some(Item::Code { range, .. }) = code.as_mut() {
                    let rest = &text[range.end..];
                    if rest.starts_with('\n') {
                        range.end += 1;
                    } else if rest.starts_with("\r\n") {
                        range.end += 2;
                    }
                }
                out.extend(code.take())
            }
            Event::Start(Tag::Heading { .. }) => out.push(Item::Heading { range }),
            Event::Start(Tag::HtmlBlock) => {
                if let Some((range, body)) = hint_at(text, range.start) {
                    skip_until = range.end;
                    out.push(Item::Hint {
                        line: lines.line(range.start),
                        range,
                        text: body,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_taken_whole_with_their_text() {
        let text = "# T\n\n<details>\n<summary>Dica</summary>\n\nUse `loop`.\n\n```rust\nnot a cell\n```\n</details>\n\nafter\n";
        let items = items(text);
        assert_eq!(items.len(), 2, "{items:?}");
        match &items[1] {
            Item::Hint {
                range,
                line,
                text: body,
            } => {
                assert_eq!(*line, 3);
                assert!(text[range.clone()].starts_with("<details>"));
                assert!(text[range.clone()].ends_with("</details>\n"));
                assert!(body.starts_with("Use `loop`."), "{body}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_details_are_not_hints() {
        let text = "<details>\n<summary>Mais</summary>\n\nx\n</details>\n";
        assert!(items(text).is_empty());
        let text = "<details><summary><b>Hint</b> 2</summary>y</details>";
        assert!(matches!(&items(text)[..], [Item::Hint { text, .. }] if text == "y"));
    }
}
