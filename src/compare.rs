//! Comparison of a cell's standard output with the lesson's expected `output` block.
//!
//! Lesson authors cannot always predict output exactly (timings, addresses, long
//! logs), so the expected text may contain patterns: `[..]` inside a line, a line
//! that is exactly `...`, and the runner-provided `[HOST]` and `[PORT]`. Matching
//! is line-based and never lets a pattern cross a line boundary, which keeps it
//! predictable for authors and cheap enough for megabyte-sized outputs.
//!
//! Final newline: Markdown code blocks always end with a newline, but a cell that
//! `print!`s its last line does not. Both sides are therefore normalised the same
//! way (CRLF to LF, then at most one trailing LF removed) and compared exactly.
//! The one newline that terminates the last line is treated as a terminator, not
//! as an extra empty line, so `"a\n"` and `"a"` match. Any further trailing newline
//! is a real empty line: `"a\n\n"` matches neither `"a"` nor `"a\n"`, because the
//! cell printed a blank line the block does not show (or the other way round).

use std::ops::Range;

use similar::TextDiff;

/// Values the runner substitutes for `[HOST]` and `[PORT]` in expected text.
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    pub host: &'a str,
    pub port: Option<u16>, // None for plain cells: `[PORT]` then stays literal text
}

/// Compares actual stdout with an expected output block. `None` when it matches,
/// otherwise the unified diff (expected against actual) to show.
pub fn compare(expected: &str, actual: &str, placeholders: Placeholders<'_>) -> Option<String> {
    let expected = normalize(expected);
    let actual = normalize(actual);
    let pattern: Vec<Line> = expected
        .split('\n')
        .map(|line| Line::parse(line, placeholders))
        .collect();
    let actual: Vec<&str> = actual.split('\n').collect();
    if matches(&pattern, &actual) {
        None
    } else {
        Some(render_diff(&pattern, &actual, MAX_ALIGN_CELLS))
    }
}

/// New expected text for `actual`, for `aula run --bless`: the actual lines,
/// except that where an old expected line still matches (a `[..]`, `[PORT]`
/// or `[HOST]` line, or a `...` that still has lines to absorb) the old line
/// is kept as it was written.
pub fn bless(expected: &str, actual: &str, placeholders: Placeholders<'_>) -> String {
    let expected = normalize(expected);
    let actual = normalize(actual);
    let raw: Vec<&str> = expected.split('\n').collect();
    let pattern: Vec<Line> = raw.iter().map(|l| Line::parse(l, placeholders)).collect();
    let actual: Vec<&str> = actual.split('\n').collect();
    let ops = tidy_absorbs(align(&pattern, &actual, MAX_ALIGN_CELLS));
    let lines = ops.iter().filter_map(|op| match op {
        Op::Match { expected, .. } => Some(raw[*expected].to_string()),
        Op::Absorb { .. } => Some(ELLIPSIS.to_string()),
        Op::Delete(_) => None,
        Op::Insert(at) => Some(actual[*at].to_string()),
    });
    join_lines(lines)
}

/// Normalises text the way the comparison does (CRLF -> LF, exactly one final newline
/// removed if present). Exposed for reports.
pub fn normalize(text: &str) -> String {
    let mut text = text.replace("\r\n", "\n");
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

/// `[..]` is kept as the marker in displayed expected lines so that an actual
/// line matched by a pattern can be shown as the very same text as the pattern.
const WILDCARD: &str = "[..]";
const ELLIPSIS: &str = "...";

/// One line of expected text, parsed once so that placeholder values are
/// substituted before matching and can never be mistaken for patterns.
#[derive(Debug)]
enum Line {
    /// A line that is exactly `...`: any number of actual lines, zero included.
    Ellipsis,
    /// Literal pieces with a `[..]` between each pair; a single piece is a
    /// plain literal line.
    Pattern(Vec<String>),
}

impl Line {
    fn parse(line: &str, placeholders: Placeholders<'_>) -> Line {
        if line == ELLIPSIS {
            return Line::Ellipsis;
        }
        let port = placeholders.port.map(|port| port.to_string());
        let mut parts = vec![String::new()];
        let mut rest = line;
        while let Some(c) = rest.chars().next() {
            let current = parts.last_mut().expect("parts is never empty");
            if let Some(after) = rest.strip_prefix(WILDCARD) {
                parts.push(String::new());
                rest = after;
            } else if let Some(after) = rest.strip_prefix("[HOST]") {
                current.push_str(placeholders.host);
                rest = after;
            } else if let (Some(port), Some(after)) = (&port, rest.strip_prefix("[PORT]")) {
                current.push_str(port);
                rest = after;
            } else {
                current.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        Line::Pattern(parts)
    }

    /// Text shown in diffs: placeholders carry their values (that is what this run
    /// expected), patterns keep their markers.
    fn display(&self) -> String {
        match self {
            Line::Ellipsis => ELLIPSIS.to_string(),
            Line::Pattern(parts) => parts.join(WILDCARD),
        }
    }

    /// Whether this is a pattern line matching `actual`; an ellipsis is not a
    /// line-for-line match and is handled by the callers.
    fn matches(&self, actual: &str) -> bool {
        let Line::Pattern(parts) = self else {
            return false;
        };
        match parts.as_slice() {
            [] => unreachable!("a pattern line has at least one part"),
            [only] => actual == only,
            [first, middle @ .., last] => {
                if actual.len() < first.len() + last.len()
                    || !actual.starts_with(first.as_str())
                    || !actual.ends_with(last.as_str())
                {
                    return false;
                }
                // With only "any text" wildcards, taking the leftmost occurrence of
                // each middle piece is never worse than a later one, so no
                // backtracking is needed.
                let mut rest = &actual[first.len()..actual.len() - last.len()];
                for part in middle {
                    match rest.find(part.as_str()) {
                        Some(at) => rest = &rest[at + part.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// `...` lines act like `*` in a glob whose "characters" are whole lines: they
/// cut the expected lines into blocks that must each match consecutive actual
/// lines. As with `[..]` inside a line, taking the leftmost fit of each middle
/// block never loses a match (an earlier end only leaves more room for what
/// follows), so no backtracking or table is needed: O(expected * actual) time at
/// worst, usually linear, and no extra memory.
fn matches(pattern: &[Line], actual: &[&str]) -> bool {
    let mut blocks = pattern.split(|line| matches!(line, Line::Ellipsis));
    let first = blocks.next().unwrap_or_default();
    let rest: Vec<&[Line]> = blocks.collect();
    let Some((last, middle)) = rest.split_last() else {
        return first.len() == actual.len() && block_matches_at(first, actual, 0);
    };
    if first.len() + last.len() > actual.len() {
        return false;
    }
    let end = actual.len() - last.len();
    if !block_matches_at(first, actual, 0) || !block_matches_at(last, actual, end) {
        return false;
    }
    let mut from = first.len();
    for block in middle {
        let Some(latest_start) = end.checked_sub(block.len()) else {
            return false;
        };
        match (from..=latest_start).find(|&start| block_matches_at(block, actual, start)) {
            Some(start) => from = start + block.len(),
            None => return false,
        }
    }
    true
}

/// Whether `block` (pattern lines only) matches the actual lines from `start` on;
/// the caller guarantees there are enough of them.
fn block_matches_at(block: &[Line], actual: &[&str], start: usize) -> bool {
    block
        .iter()
        .zip(&actual[start..start + block.len()])
        .all(|(line, actual)| line.matches(actual))
}

/// How one expected or actual line is accounted for in a display alignment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// The expected pattern line matches this actual line.
    Match { expected: usize, actual: usize },
    /// The expected `...` line swallows these actual lines (possibly none).
    Absorb {
        expected: usize,
        actual: Range<usize>,
    },
    /// The expected line has no counterpart.
    Delete(usize),
    /// The actual line has no counterpart.
    Insert(usize),
}

/// Past this many DP cells (two bytes each) the alignment falls back to a greedy
/// walk, so a huge mismatch costs little memory and time.
const MAX_ALIGN_CELLS: usize = 1 << 23;

/// Builds the diff on a rewritten actual text in which everything an expected
/// pattern accounts for is shown as that pattern line, so that only real
/// differences remain for `similar` to report.
fn render_diff(pattern: &[Line], actual: &[&str], max_cells: usize) -> String {
    let expected_text = join_lines(pattern.iter().map(Line::display));
    let ops = tidy_absorbs(align(pattern, actual, max_cells));
    let rewritten = join_lines(ops.iter().filter_map(|op| match op {
        Op::Match { expected, .. } => Some(pattern[*expected].display()),
        Op::Absorb { .. } => Some(ELLIPSIS.to_string()),
        Op::Delete(_) => None,
        Op::Insert(at) => Some(actual[*at].to_string()),
    }));
    let diff = unified_diff(&expected_text, &rewritten);
    if !diff.is_empty() {
        return diff;
    }
    // Not expected to happen (the outputs differ, so a sound alignment leaves a
    // difference), but a mismatch must never be reported with an empty diff.
    let raw = join_lines(actual.iter().map(|line| line.to_string()));
    let diff = unified_diff(&expected_text, &raw);
    if !diff.is_empty() {
        return diff;
    }
    let mut diff = String::from("--- expected\n+++ actual\n");
    diff.push_str(&format!("@@ -1,{} +1,{} @@\n", pattern.len(), actual.len()));
    for line in pattern {
        diff.push_str(&format!("-{}\n", line.display()));
    }
    for line in actual {
        diff.push_str(&format!("+{line}\n"));
    }
    diff
}

/// Every line, the last included, gets a newline so that `similar` adds no
/// "No newline at end of file" notes: the final newline was already dealt with
/// by normalisation.
fn join_lines(lines: impl Iterator<Item = String>) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn unified_diff(expected: &str, actual: &str) -> String {
    TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// Finds an alignment with as many pattern-line matches as possible. Matching
/// leading and trailing lines are taken greedily first (for an LCS this is always
/// optimal), which usually leaves a small middle for the quadratic DP.
fn align(pattern: &[Line], actual: &[&str], max_cells: usize) -> Vec<Op> {
    let (mut e_start, mut a_start) = (0, 0);
    while e_start < pattern.len()
        && a_start < actual.len()
        && pattern[e_start].matches(actual[a_start])
    {
        e_start += 1;
        a_start += 1;
    }
    let (mut e_end, mut a_end) = (pattern.len(), actual.len());
    while e_end > e_start && a_end > a_start && pattern[e_end - 1].matches(actual[a_end - 1]) {
        e_end -= 1;
        a_end -= 1;
    }

    let mut ops: Vec<Op> = (0..e_start)
        .map(|i| Op::Match {
            expected: i,
            actual: i,
        })
        .collect();
    let mid_pattern = &pattern[e_start..e_end];
    let mid_actual = &actual[a_start..a_end];
    let cells = (mid_pattern.len() + 1).saturating_mul(mid_actual.len() + 1);
    let middle = if cells <= max_cells && mid_pattern.len() <= usize::from(u16::MAX) {
        align_dp(mid_pattern, mid_actual)
    } else {
        align_greedy(mid_pattern, mid_actual)
    };
    ops.extend(middle.into_iter().map(|op| match op {
        Op::Match { expected, actual } => Op::Match {
            expected: expected + e_start,
            actual: actual + a_start,
        },
        Op::Absorb { expected, actual } => Op::Absorb {
            expected: expected + e_start,
            actual: actual.start + a_start..actual.end + a_start,
        },
        Op::Delete(i) => Op::Delete(i + e_start),
        Op::Insert(j) => Op::Insert(j + a_start),
    }));
    ops.extend((0..pattern.len() - e_end).map(|k| Op::Match {
        expected: e_end + k,
        actual: a_end + k,
    }));
    ops
}

/// LCS-style DP where "equal" is "pattern matches line" and a `...` line can
/// absorb any run for free. An ellipsis is never deleted: absorbing nothing is
/// always allowed, so it is never itself a difference.
fn align_dp(pattern: &[Line], actual: &[&str]) -> Vec<Op> {
    let (n, m) = (pattern.len(), actual.len());
    let width = m + 1;
    // best[i * width + j]: most matches aligning pattern[i..] with actual[j..].
    let mut best = vec![0u16; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let skip_expected = best[(i + 1) * width + j];
            let skip_actual = best[i * width + j + 1];
            let mut value = skip_expected.max(skip_actual);
            if pattern[i].matches(actual[j]) {
                value = value.max(best[(i + 1) * width + j + 1] + 1);
            }
            best[i * width + j] = value;
        }
    }

    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut absorb_start = None;
    while i < n {
        let here = best[i * width + j];
        if let Line::Ellipsis = pattern[i] {
            let start = *absorb_start.get_or_insert(j);
            // Absorb as much as possible; `tidy_absorbs` hands lines back where
            // they read better as replacements.
            if j < m && best[i * width + j + 1] == here {
                j += 1;
            } else {
                ops.push(Op::Absorb {
                    expected: i,
                    actual: start..j,
                });
                absorb_start = None;
                i += 1;
            }
        } else if j < m
            && pattern[i].matches(actual[j])
            && here == best[(i + 1) * width + j + 1] + 1
        {
            ops.push(Op::Match {
                expected: i,
                actual: j,
            });
            i += 1;
            j += 1;
        } else if j == m || best[(i + 1) * width + j] == here {
            ops.push(Op::Delete(i));
            i += 1;
        } else {
            ops.push(Op::Insert(j));
            j += 1;
        }
    }
    ops.extend((j..m).map(Op::Insert));
    ops
}

/// Cheap alignment for inputs too big for the DP, in the manner of snapbox: walk
/// both sides, let each `...` run to the first line the next pattern line
/// matches, and show everything from the first failure on unaligned.
/// Ellipses in that unaligned tail are shown as missing: the expected text
/// stopped lining up before them.
fn align_greedy(pattern: &[Line], actual: &[&str]) -> Vec<Op> {
    let (n, m) = (pattern.len(), actual.len());
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n {
        match &pattern[i] {
            Line::Ellipsis => {
                let next = pattern[i + 1..]
                    .iter()
                    .position(|line| !matches!(line, Line::Ellipsis))
                    .map(|offset| i + 1 + offset);
                let Some(next) = next else {
                    ops.push(Op::Absorb {
                        expected: i,
                        actual: j..m,
                    });
                    ops.extend((i + 1..n).map(|k| Op::Absorb {
                        expected: k,
                        actual: m..m,
                    }));
                    return ops;
                };
                let Some(found) = (j..m).find(|&k| pattern[next].matches(actual[k])) else {
                    // Swallow the rest; `tidy_absorbs` gives back lines to pair with
                    // the expected lines that are then missing.
                    ops.push(Op::Absorb {
                        expected: i,
                        actual: j..m,
                    });
                    i += 1;
                    j = m;
                    continue;
                };
                ops.push(Op::Absorb {
                    expected: i,
                    actual: j..found,
                });
                ops.extend((i + 1..next).map(|k| Op::Absorb {
                    expected: k,
                    actual: found..found,
                }));
                i = next;
                j = found;
            }
            line => {
                if j < m && line.matches(actual[j]) {
                    ops.push(Op::Match {
                        expected: i,
                        actual: j,
                    });
                    i += 1;
                    j += 1;
                } else {
                    break;
                }
            }
        }
    }
    ops.extend((i..n).map(Op::Delete));
    ops.extend((j..m).map(Op::Insert));
    ops
}

/// An ellipsis next to missing expected lines would otherwise swallow the actual
/// lines that took their place, leaving a diff with only `-` lines ("expected
/// `Done`") and hiding what came instead. Give back as many absorbed lines as
/// there are unpaired deletions right before (from the run's start) and right
/// after (from its end), so they show as replacements.
fn tidy_absorbs(ops: Vec<Op>) -> Vec<Op> {
    let mut tidy = Vec::with_capacity(ops.len());
    // Deletions minus insertions since the last anchor (match or absorb).
    let mut unpaired: isize = 0;
    for (index, op) in ops.iter().enumerate() {
        match op {
            Op::Match { .. } => {
                unpaired = 0;
                tidy.push(op.clone());
            }
            Op::Delete(_) => {
                unpaired += 1;
                tidy.push(op.clone());
            }
            Op::Insert(_) => {
                unpaired -= 1;
                tidy.push(op.clone());
            }
            Op::Absorb { expected, actual } => {
                let len = actual.len();
                let front = usize::try_from(unpaired).unwrap_or(0).min(len);
                let mut after: isize = 0;
                for next in &ops[index + 1..] {
                    match next {
                        Op::Delete(_) => after += 1,
                        Op::Insert(_) => after -= 1,
                        Op::Match { .. } | Op::Absorb { .. } => break,
                    }
                }
                let back = usize::try_from(after).unwrap_or(0).min(len - front);
                let kept = actual.start + front..actual.end - back;
                tidy.extend((actual.start..kept.start).map(Op::Insert));
                tidy.push(Op::Absorb {
                    expected: *expected,
                    actual: kept.clone(),
                });
                tidy.extend((kept.end..actual.end).map(Op::Insert));
                unpaired = -(back as isize);
            }
        }
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blessing_keeps_the_patterns_that_still_match() {
        let p = Placeholders {
            host: "127.0.0.1",
            port: Some(4000),
        };
        let expected = "Connected to [HOST]:[PORT]\nid [..] ok\n...\nReceived 5 bytes\n";
        let actual = "Connected to 127.0.0.1:4000\nid 42 ok\nnoise\nmore\nReceived 6 bytes\n";
        let blessed = bless(expected, actual, p);
        assert_eq!(
            blessed,
            "Connected to [HOST]:[PORT]\nid [..] ok\n...\nReceived 6 bytes\n"
        );
        assert_eq!(compare(&blessed, actual, p), None);
        // Blessing again changes nothing.
        assert_eq!(bless(&blessed, actual, p), blessed);
        // No old text at all: the actual lines.
        assert_eq!(bless("", "a\nb", p), "a\nb\n");
    }

    const PLACEHOLDERS: Placeholders<'static> = Placeholders {
        host: "127.0.0.1",
        port: Some(8080),
    };

    fn check_table(cases: &[(&str, &str, &str, bool)], placeholders: Placeholders<'_>) {
        for &(name, expected, actual, should_match) in cases {
            let result = compare(expected, actual, placeholders);
            assert_eq!(
                result.is_none(),
                should_match,
                "case {name:?}: expected {expected:?} vs actual {actual:?} gave {result:?}"
            );
            if let Some(diff) = result {
                assert!(
                    diff.starts_with("--- expected\n+++ actual\n"),
                    "case {name:?}: diff lacks headers:\n{diff}"
                );
                assert!(
                    diff.lines().any(|line| line.starts_with("@@")),
                    "case {name:?}: diff has no hunk:\n{diff}"
                );
            }
        }
    }

    #[test]
    fn exact_crlf_and_final_newline() {
        check_table(
            &[
                ("exact", "a\nb\n", "a\nb\n", true),
                ("exact empty", "", "", true),
                ("empty vs newline", "\n", "", true),
                ("different line", "a\nb\n", "a\nc\n", false),
                ("extra line", "a\n", "a\nb\n", false),
                ("missing line", "a\nb\n", "a\n", false),
                ("case matters", "Hello\n", "hello\n", false),
                ("whitespace matters", "a b\n", "a  b\n", false),
                ("trailing space matters", "a\n", "a \n", false),
                ("crlf actual", "a\nb\n", "a\r\nb\r\n", true),
                ("crlf expected", "a\r\nb\r\n", "a\nb\n", true),
                ("crlf both", "a\r\nb\r\n", "a\r\nb", true),
                ("lone cr kept", "a\rb\n", "a\nb\n", false),
                ("final newline missing in actual", "a\n", "a", true),
                ("final newline extra in actual", "a", "a\n", true),
                ("final crlf missing", "a\r\n", "a", true),
                ("two final newlines vs none", "a\n\n", "a", false),
                ("none vs two final newlines", "a", "a\n\n", false),
                ("one vs two final newlines", "a\n", "a\n\n", false),
                ("blank last line kept", "a\n\n", "a\n\n", true),
                ("blank last line missing", "a\n\n", "a\n", false),
            ],
            PLACEHOLDERS,
        );
    }

    #[test]
    fn wildcard_within_line() {
        check_table(
            &[
                ("start", "[..] done\n", "took 3s done\n", true),
                ("start empty", "[..]done\n", "done\n", true),
                ("start fails", "[..] done\n", "took 3s finished\n", false),
                ("middle", "took [..]s\n", "took 3.25s\n", true),
                ("middle empty", "ab[..]cd\n", "abcd\n", true),
                ("middle no overlap", "ab[..]bc\n", "abc\n", false),
                ("end", "pid [..]\n", "pid 4242\n", true),
                ("end fails on prefix", "pid [..]\n", "tid 4242\n", false),
                (
                    "several",
                    "[..] took [..] ms ([..])\n",
                    "run took 12 ms (ok)\n",
                    true,
                ),
                ("several in order", "a[..]b[..]c\n", "a-c-b\n", false),
                ("several repeated", "a[..]a[..]a\n", "aaa\n", true),
                ("several too few", "a[..]a[..]a\n", "aa\n", false),
                ("adjacent", "x[..][..]y\n", "xzy\n", true),
                ("only wildcard", "[..]\n", "anything at all\n", true),
                ("only wildcard empty line", "a\n[..]\nb\n", "a\n\nb\n", true),
                ("only wildcard empty output", "[..]\n", "", true),
                ("only wildcard one line", "[..]\n", "a\nb\n", false),
                ("not across lines", "a[..]c\n", "ab\nc\n", false),
                ("not across lines 2", "a[..]\n", "ab\nc\n", false),
                ("line count kept", "[..]\n[..]\n", "x\n", false),
                ("other brackets literal", "[.] [...]\n", "[.] [...]\n", true),
                ("other brackets not wild", "[.]\n", "x\n", false),
                ("nested brackets", "[[..]]\n", "[abc]\n", true),
                (
                    "unicode",
                    "héllo [..] wörld\n",
                    "héllo ünïcode wörld\n",
                    true,
                ),
            ],
            PLACEHOLDERS,
        );
    }

    #[test]
    fn ellipsis_lines() {
        check_table(
            &[
                ("start", "...\nend\n", "a\nb\nend\n", true),
                ("start zero", "...\nend\n", "end\n", true),
                ("middle", "begin\n...\nend\n", "begin\nx\ny\nend\n", true),
                ("middle zero", "begin\n...\nend\n", "begin\nend\n", true),
                ("end", "begin\n...\n", "begin\nx\ny\n", true),
                ("end zero", "begin\n...\n", "begin\n", true),
                ("alone", "...\n", "a\nb\nc\n", true),
                ("alone empty", "...\n", "", true),
                ("many", "a\n...\nz\n", &many_lines(), true),
                ("two", "a\n...\nm\n...\nz\n", "a\nb\nm\nn\no\nz\n", true),
                ("two zero", "a\n...\nm\n...\nz\n", "a\nm\nz\n", true),
                ("two adjacent", "a\n...\n...\nz\n", "a\nb\nz\n", true),
                ("backtracking", "...\nx\ny\n", "x\nx\ny\n", true),
                (
                    "backtracking 2",
                    "...\nx\n...\nx\ny\n",
                    "x\nx\nq\nx\ny\n",
                    true,
                ),
                (
                    "with wildcard",
                    "...\nresult: [..]\n",
                    "log\nresult: 42\n",
                    true,
                ),
                ("missing end", "begin\n...\nend\n", "begin\nx\n", false),
                ("missing begin", "begin\n...\nend\n", "x\nend\n", false),
                ("order kept", "a\n...\nb\n", "b\nx\na\n", false),
                ("after end", "...\nend\n", "end\nmore\n", false),
                ("not a prefix", "... more\n", "x more\n", false),
                ("indented literal", "  ...\n", "x\n", false),
                ("literal itself", "...\n", "...\n", true),
            ],
            PLACEHOLDERS,
        );
    }

    fn many_lines() -> String {
        let mut text = String::from("a\n");
        for k in 0..1000 {
            text.push_str(&format!("line {k}\n"));
        }
        text.push_str("z\n");
        text
    }

    #[test]
    fn placeholders() {
        check_table(
            &[
                ("port", "listening on [PORT]\n", "listening on 8080\n", true),
                (
                    "port wrong",
                    "listening on [PORT]\n",
                    "listening on 8081\n",
                    false,
                ),
                (
                    "host",
                    "http://[HOST]:[PORT]/\n",
                    "http://127.0.0.1:8080/\n",
                    true,
                ),
                ("host wrong", "[HOST]\n", "localhost\n", false),
                ("with wildcard", "[HOST]:[..]\n", "127.0.0.1:31337\n", true),
                ("not literal", "[PORT]\n", "[PORT]\n", false),
                ("several", "[PORT] [PORT]\n", "8080 8080\n", true),
            ],
            PLACEHOLDERS,
        );
        check_table(
            &[
                ("port stays literal", "port [PORT]\n", "port [PORT]\n", true),
                (
                    "port not substituted",
                    "port [PORT]\n",
                    "port 8080\n",
                    false,
                ),
                ("host still substituted", "[HOST]\n", "localhost\n", true),
            ],
            Placeholders {
                host: "localhost",
                port: None,
            },
        );
        // A substituted value is matched literally, never as a pattern.
        check_table(
            &[
                ("value not a wildcard", "h=[HOST]\n", "h=anything\n", false),
                ("value literal", "h=[HOST]\n", "h=[..]\n", true),
                ("value not an ellipsis", "[HOST]\n", "a\nb\n", false),
            ],
            Placeholders {
                host: "[..]",
                port: None,
            },
        );
        check_table(
            &[("ellipsis value", "[HOST]\n", "a\n", false)],
            Placeholders {
                host: "...",
                port: None,
            },
        );
    }

    #[test]
    fn normalize_rules() {
        for (input, output) in [
            ("", ""),
            ("a", "a"),
            ("a\n", "a"),
            ("a\n\n", "a\n"),
            ("a\r\nb\r\n", "a\nb"),
            ("a\r\n\r\n", "a\n"),
            ("a\rb", "a\rb"),
        ] {
            assert_eq!(normalize(input), output, "normalize({input:?})");
        }
    }

    /// (name, expected, actual, lines the diff must contain, lines it must not).
    type DiffCase<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], &'a [&'a str]);

    #[test]
    fn mismatch_diffs() {
        let cases: &[DiffCase<'_>] = &[
            (
                "changed line",
                "a\nb\nc\n",
                "a\nx\nc\n",
                &["-b", "+x", " a", " c"],
                &[],
            ),
            ("missing line", "a\nb\n", "a\n", &["-b", " a"], &["+a"]),
            ("extra line", "a\n", "a\nb\n", &["+b", " a"], &["-a"]),
            ("extra blank line", "a\n", "a\n\n\n", &["+"], &["-a"]),
            (
                "next to wildcard",
                "took [..] ms\nresult: 1\ndone\n",
                "took 17 ms\nresult: 2\ndone\n",
                &[" took [..] ms", "-result: 1", "+result: 2"],
                &["-took [..] ms", "+took 17 ms"],
            ),
            (
                "wildcard-only line",
                "header\n[..]\nresult: 1\n",
                "header\nsome noise\nresult: 2\n",
                &[" [..]", "-result: 1", "+result: 2"],
                &["-[..]", "+some noise"],
            ),
            (
                "wildcard line that does not match",
                "id [..]\nok\n",
                "pid 7\nok\n",
                &["-id [..]", "+pid 7", " ok"],
                &[],
            ),
            (
                "ellipsis swallows lines",
                "begin\n...\nresult: 1\n",
                "begin\nl1\nl2\nl3\nl4\nresult: 2\n",
                &[" begin", " ...", "-result: 1", "+result: 2"],
                &["+l1", "+l2", "+l3", "-..."],
            ),
            (
                "ellipsis before missing line",
                "...\nDone\n",
                "l1\nl2\nError: boom\n",
                &[" ...", "-Done", "+Error: boom"],
                &["+l1", "-..."],
            ),
            (
                "ellipsis after changed line",
                "start\nfirst\n...\nend\n",
                "start\nother\nl1\nl2\nend\n",
                &["-first", "+other", " ..."],
                &["+l2", "-..."],
            ),
            (
                "two ellipses, middle line missing",
                "a\n...\nm\n...\nz\n",
                "a\nb\nc\nd\nz\n",
                &["-m", " ...", " a", " z"],
                &["-...", "-a", "-z"],
            ),
            (
                "port value shown",
                "on [HOST]:[PORT]\n",
                "on 127.0.0.1:9999\n",
                &["-on 127.0.0.1:8080", "+on 127.0.0.1:9999"],
                &[],
            ),
            ("final newlines", "a\n\n\n", "a\n", &["-", " a"], &[]),
        ];
        for &(name, expected, actual, present, absent) in cases {
            let diff = compare(expected, actual, PLACEHOLDERS)
                .unwrap_or_else(|| panic!("case {name:?} should not match"));
            assert!(
                diff.starts_with("--- expected\n+++ actual\n"),
                "case {name:?}: headers missing:\n{diff}"
            );
            let lines: Vec<&str> = diff.lines().collect();
            for wanted in present {
                assert!(
                    lines.contains(wanted),
                    "case {name:?}: {wanted:?} missing from:\n{diff}"
                );
            }
            for unwanted in absent {
                assert!(
                    !lines.contains(unwanted),
                    "case {name:?}: {unwanted:?} present in:\n{diff}"
                );
            }
        }
    }

    /// Slow but obviously right: plain backtracking over the rules.
    fn reference_matches(expected: &str, actual: &str) -> bool {
        fn line(pattern: &str, actual: &str) -> bool {
            if let Some(rest) = pattern.strip_prefix("[..]") {
                return actual
                    .char_indices()
                    .map(|(at, _)| at)
                    .chain([actual.len()])
                    .any(|at| line(rest, &actual[at..]));
            }
            match (pattern.chars().next(), actual.chars().next()) {
                (None, None) => true,
                (Some(p), Some(a)) if p == a => {
                    line(&pattern[p.len_utf8()..], &actual[a.len_utf8()..])
                }
                _ => false,
            }
        }
        fn lines(pattern: &[&str], actual: &[&str]) -> bool {
            match pattern.split_first() {
                None => actual.is_empty(),
                Some((&"...", rest)) => (0..=actual.len()).any(|k| lines(rest, &actual[k..])),
                Some((first, rest)) => {
                    !actual.is_empty() && line(first, actual[0]) && lines(rest, &actual[1..])
                }
            }
        }
        let expected = normalize(expected);
        let actual = normalize(actual);
        let expected: Vec<&str> = expected.split('\n').collect();
        let actual: Vec<&str> = actual.split('\n').collect();
        lines(&expected, &actual)
    }

    fn has_change(diff: &str) -> bool {
        diff.starts_with("--- expected\n+++ actual\n")
            && diff
                .lines()
                .skip(2)
                .any(|line| line.starts_with('-') || line.starts_with('+'))
    }

    /// Exhaustive small cases: the matcher agrees with a backtracking reference,
    /// and every mismatch gets a diff with at least one changed line, whichever
    /// alignment (DP or greedy fallback) builds it.
    #[test]
    fn agrees_with_reference_and_diffs_are_never_empty() {
        let pieces = ["a", "[..]", "...", "a[..]", "", "[..]b"];
        let actual_pieces = ["a", "b", "ab", ""];
        let mut mismatches = 0;
        for e_bits in 0..6usize.pow(3) {
            let expected: Vec<&str> = (0..3)
                .map(|k| pieces[(e_bits / 6usize.pow(k)) % 6])
                .collect();
            for a_bits in 0..4usize.pow(3) {
                let actual: Vec<&str> = (0..3)
                    .map(|k| actual_pieces[(a_bits / 4usize.pow(k)) % 4])
                    .collect();
                for (e_len, a_len) in [(3, 3), (3, 2), (2, 3), (3, 1), (1, 3)] {
                    let expected = expected[..e_len].join("\n") + "\n";
                    let actual = actual[..a_len].join("\n");
                    let result = compare(&expected, &actual, PLACEHOLDERS);
                    assert_eq!(
                        result.is_none(),
                        reference_matches(&expected, &actual),
                        "{expected:?} vs {actual:?}"
                    );
                    let Some(diff) = result else { continue };
                    mismatches += 1;
                    assert!(has_change(&diff), "{expected:?} vs {actual:?}:\n{diff}");
                    let pattern: Vec<Line> = normalize(&expected)
                        .split('\n')
                        .map(|line| Line::parse(line, PLACEHOLDERS))
                        .collect();
                    let actual = normalize(&actual);
                    let actual: Vec<&str> = actual.split('\n').collect();
                    let greedy = render_diff(&pattern, &actual, 0);
                    assert!(
                        has_change(&greedy),
                        "greedy {expected:?} vs {actual:?}:\n{greedy}"
                    );
                }
            }
        }
        assert!(
            mismatches > 10_000,
            "too few mismatching cases: {mismatches}"
        );
    }

    fn big_output(lines: usize) -> String {
        (0..lines)
            .map(|k| format!("line {k} of output\n"))
            .collect()
    }

    #[test]
    fn large_input() {
        let actual = big_output(50_000);
        let mut expected: String = (0..100).map(|k| format!("line {k} of output\n")).collect();
        expected.push_str("...\n");
        expected.push_str("line 25000 of [..]\n...\n");
        expected.extend((49_900..50_000).map(|k| format!("line {k} of output\n")));
        assert_eq!(compare(&expected, &actual, PLACEHOLDERS), None);

        // A mismatch at the very end: the diff must show it and nothing else.
        let wrong = expected.replace("line 49999 of output\n", "line 49999 of input\n");
        let diff = compare(&wrong, &actual, PLACEHOLDERS).expect("must not match");
        assert!(diff.contains("\n-line 49999 of input\n"), "{diff}");
        assert!(diff.contains("\n+line 49999 of output\n"), "{diff}");
        assert!(diff.lines().count() < 20, "{diff}");

        // Too big for the DP: the greedy fallback still gives a small diff.
        let literal = big_output(50_000).replace("line 30000 of", "line 30000 in");
        let diff = compare(&literal, &actual, PLACEHOLDERS).expect("must not match");
        assert!(diff.contains("\n-line 30000 in output\n"), "{diff}");
        assert!(diff.contains("\n+line 30000 of output\n"), "{diff}");

        let mut wide = String::from("...\n");
        wide.extend((0..300).map(|k| format!("[..] {k} of output\n...\n")));
        wide.push_str("missing\n");
        let diff = compare(&wide, &actual, PLACEHOLDERS).expect("must not match");
        assert!(diff.contains("\n-missing\n"), "{diff}");
    }
}
