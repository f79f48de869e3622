//! The layers of README.md's "How it works", checked: every path into the
//! crate that a file of `src/` writes (`use crate::…`, `crate::x::` inline,
//! in macros too, and `super::` paths that climb out of their module) may
//! name only a module on a layer below the file's own. Modules on one layer
//! import none of each other, and [`APART`] names the pairs the layers allow
//! but the design does not.
//!
//! [`LAYERS`] and the README's drawing say the same: a test reads the
//! drawing's groups and compares.
//!
//! The same reading of `src/` keeps every function short enough to hold in
//! one's head: [`LONGEST`] lines at most, from its `fn` line to its closing
//! brace (doc comments and attributes above it not counted).

use std::path::{Path, PathBuf};

/// The modules of `src/`, lowest layer first.
const LAYERS: &[&[&str]] = &[
    &["fs"],
    &["i18n", "compare", "cache", "partition"],
    &["lesson"],
    &["observation"],
    &["outcome"],
    &["plan"],
    // exec makes observations, judge turns them into outcomes, report
    // turns those into words: run joins them, none reaches into another.
    &["exec", "judge", "report"],
    &["run"],
    &["course", "grade", "bless", "merge"],
    &["cli"],
];

/// Imports the layers allow but the design does not, with why.
const APART: &[(&str, &str, &str)] = &[(
    "exec",
    "outcome",
    "exec says what it saw (observation), never a verdict",
)];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// An import against the drawing: the file, its line, the module it names,
/// and why that is not allowed.
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    target: String,
    why: String,
}

/// `text` with comments, strings and character literals blanked (newlines
/// kept, so lines still count), leaving only code.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let end = if c == '/' && next == Some('/') {
            (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len())
        } else if c == '/' && next == Some('*') {
            block_comment_end(&chars, i)
        } else if c == '"' || (c == 'r' && matches!(next, Some('"' | '#')) && raw_start(&chars, i))
        {
            string_end(&chars, i)
        } else if c == '\'' {
            char_end(&chars, i)
        } else if c.is_alphanumeric() || c == '_' {
            // A whole identifier, so `r` or `b` inside one never starts a string.
            let end = (i..chars.len())
                .find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_'))
                .unwrap_or(chars.len());
            out.extend(&chars[i..end]);
            i = end;
            continue;
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        for &c in &chars[i..end] {
            blank(&mut out, c);
        }
        i = end;
    }
    out
}

fn block_comment_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => (depth, i) = (depth + 1, i + 2),
            ('*', '/') => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// `r"`, `r#"`: a raw string starts at `start`.
fn raw_start(chars: &[char], start: usize) -> bool {
    let hashes = chars[start + 1..].iter().take_while(|&&c| c == '#').count();
    chars.get(start + 1 + hashes) == Some(&'"')
}

fn string_end(chars: &[char], start: usize) -> usize {
    if chars[start] == 'r' {
        let hashes = chars[start + 1..].iter().take_while(|&&c| c == '#').count();
        let close: Vec<char> = std::iter::once('"')
            .chain(std::iter::repeat_n('#', hashes))
            .collect();
        let body = start + 2 + hashes;
        return (body..chars.len())
            .find(|&j| chars[j..].starts_with(&close))
            .map_or(chars.len(), |j| j + close.len());
    }
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// A character literal's end, or just past the quote of a lifetime.
fn char_end(chars: &[char], start: usize) -> usize {
    match (chars.get(start + 1), chars.get(start + 2)) {
        (Some('\\'), _) => (start + 2..chars.len())
            .find(|&j| chars[j] == '\'')
            .map_or(chars.len(), |j| j + 1),
        (Some(_), Some('\'')) => start + 3,
        _ => start + 1,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(&'static str),
}

/// Identifiers and the punctuation paths are made of, each with its line.
fn tokens(code: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let end = (i..chars.len())
                .find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_'))
                .unwrap_or(chars.len());
            out.push((Token::Ident(chars[i..end].iter().collect()), line));
            i = end;
            continue;
        }
        let punct = match (c, chars.get(i + 1)) {
            (':', Some(':')) => Some("::"),
            ('{', _) => Some("{"),
            ('}', _) => Some("}"),
            (',', _) => Some(","),
            ('$', _) => Some("$"),
            _ => None,
        };
        line += usize::from(c == '\n');
        if let Some(p) = punct {
            out.push((Token::Punct(p), line));
            i += p.len();
        } else {
            i += 1;
        }
    }
    out
}

/// The top-level modules a path starting at `tokens[at]` (just past its
/// `crate::` or climbing `super::`s) names: one, or each of a `{…}` group.
fn named_at(tokens: &[(Token, usize)], at: usize) -> Vec<(String, usize)> {
    match tokens.get(at) {
        Some((Token::Ident(name), line)) => vec![(name.clone(), *line)],
        Some((Token::Punct("{"), _)) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut expect = true;
            for (t, line) in &tokens[at..] {
                match t {
                    Token::Punct("{") => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    Token::Punct("}") if depth == 1 => break,
                    Token::Punct("}") => depth -= 1,
                    Token::Punct(",") if depth == 1 => expect = true,
                    Token::Ident(name) if expect => {
                        names.push((name.clone(), *line));
                        expect = false;
                    }
                    _ => {}
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

/// The top-level modules a file names, with the line of each. `depth`: how
/// many modules deep the file is (`src/a.rs` and `src/a/mod.rs` 1,
/// `src/a/b.rs` 2), so `super` paths that leave its top module count.
fn imports(code: &str, depth: usize) -> Vec<(String, usize)> {
    let tokens = tokens(code);
    let is = |i: usize, p: &str| matches!(tokens.get(i), Some((Token::Punct(q), _)) if *q == p);
    let ident = |i: usize| match tokens.get(i) {
        Some((Token::Ident(name), _)) => Some(name.as_str()),
        _ => None,
    };
    let mut found = Vec::new();
    // Brace depths at which inline `mod x {` blocks close.
    let (mut braces, mut inline): (usize, Vec<usize>) = (0, Vec::new());
    for i in 0..tokens.len() {
        if is(i, "{") {
            braces += 1;
            if i >= 2 && ident(i - 2) == Some("mod") && ident(i - 1).is_some() {
                inline.push(braces);
            }
        } else if is(i, "}") {
            if inline.last() == Some(&braces) {
                inline.pop();
            }
            braces = braces.saturating_sub(1);
        }
        let after_path = i > 0 && (is(i - 1, "::") || is(i - 1, "$"));
        if after_path {
            continue;
        }
        if ident(i) == Some("crate") && is(i + 1, "::") {
            found.extend(named_at(&tokens, i + 2));
        } else if ident(i) == Some("super") {
            let mut climbs = 1;
            while is(i + 2 * climbs - 1, "::") && ident(i + 2 * climbs) == Some("super") {
                climbs += 1;
            }
            if climbs >= depth + inline.len() && is(i + 2 * climbs - 1, "::") {
                found.extend(named_at(&tokens, i + 2 * climbs));
            }
        }
    }
    found
}

/// The file's top module and how deep it is, from its path under `src/`;
/// `None` for the crate's root files.
fn module_of(relative: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.len() == 1 && (parts[0] == "lib.rs" || parts[0] == "main.rs") {
        return None;
    }
    let top = parts[0].trim_end_matches(".rs").to_owned();
    let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
    Some((top, depth))
}

/// What is wrong with the imports of one file.
fn check(file: &str, text: &str) -> Vec<Violation> {
    let relative = Path::new(file)
        .strip_prefix("src")
        .unwrap_or(Path::new(file));
    let Some((module, depth)) = module_of(relative) else {
        return Vec::new();
    };
    let violation = |target: &str, line: usize, why: String| Violation {
        file: file.to_owned(),
        line,
        target: target.to_owned(),
        why,
    };
    let Some(own) = layer_of(&module) else {
        let why = format!("module `{module}` is on no layer: add it to LAYERS and the README");
        return vec![violation(&module, 1, why)];
    };
    let mut found = Vec::new();
    for (target, line) in imports(&code_only(text), depth) {
        if target == module || target == "self" {
            continue;
        }
        let why = match layer_of(&target) {
            None => format!("`{target}` is on no layer"),
            Some(l) if l > own => format!("`{target}` is drawn above `{module}`"),
            Some(l) if l == own => {
                format!("`{target}` and `{module}` share a layer and import none of each other")
            }
            Some(_) => match APART.iter().find(|(a, b, _)| *a == module && *b == target) {
                Some((_, _, reason)) => reason.to_string(),
                None => continue,
            },
        };
        found.push(violation(&target, line, why));
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_of_src_goes_down_the_drawn_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 20, "src/ read: {files:?}");
    let mut violations = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        violations.extend(check(&relative, &std::fs::read_to_string(&path).unwrap()));
    }
    let lines: Vec<String> = violations
        .iter()
        .map(|v| {
            format!(
                "{}:{} imports crate::{}: {}",
                v.file, v.line, v.target, v.why
            )
        })
        .collect();
    assert!(
        lines.is_empty(),
        "imports against the layers:\n{}",
        lines.join("\n")
    );
}

/// The groups of README.md's drawing, in order: after "## How it works",
/// the first `text` block, groups split by blank lines, a module named by
/// each line that does not start with a space.
fn readme_layers(readme: &str) -> Vec<Vec<String>> {
    let section = &readme[readme.find("## How it works").expect("the section")..];
    let start = section.find("```text\n").expect("the drawing") + "```text\n".len();
    let drawing = &section[start..start + section[start..].find("```").unwrap()];
    drawing
        .split("\n\n")
        .map(|group| {
            group
                .lines()
                .filter(|l| !l.starts_with(' ') && !l.is_empty())
                .map(|l| l.split_whitespace().next().unwrap().to_owned())
                .collect::<Vec<String>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

#[test]
fn the_readme_draws_the_layers_this_test_enforces() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let drawn = readme_layers(&readme.unwrap());
    let enforced: Vec<Vec<String>> = LAYERS
        .iter()
        .map(|l| l.iter().map(|m| m.to_string()).collect())
        .collect();
    assert_eq!(drawn, enforced);
}

/// Each import that ran against the drawing before the layers were made
/// true, as it was written: the check must still see every one.
#[test]
fn the_imports_that_ran_backwards_are_caught() {
    let backwards = [
        ("src/judge.rs", "use crate::exec::COMPILE_LIMIT;"),
        (
            "src/report/wire.rs",
            "let _ = t!(\"wire.cut\", locale = lang, n = crate::exec::relay::KEEP);",
        ),
        ("src/report/json.rs", "use crate::run::Finished;"),
        ("src/observation.rs", "use crate::outcome::Diagnostic;"),
        (
            "src/exec/kernel.rs",
            "use crate::observation::Ending;\nuse crate::outcome::Diagnostic;",
        ),
        (
            "src/exec/source.rs",
            "use crate::outcome::{At, Diagnostic};",
        ),
        (
            "src/plan.rs",
            "use crate::cache::{Cache, Key};\nuse crate::exec::Replay;",
        ),
        (
            "src/plan.rs",
            "pub fn environment(options: &crate::exec::Options) {}",
        ),
        ("src/judge.rs", "use super::exec::Options;"),
        ("src/report/human.rs", "use super::super::run::Finished;"),
        ("src/lesson/notebook.rs", "use super::super::plan;"),
        ("src/grade/mod.rs", "mod tests { use super::super::cli; }"),
        (
            "src/exec/capture.rs",
            "use crate::{observation::Fault, report::Event};",
        ),
    ];
    for (file, text) in backwards {
        let found = check(file, text);
        assert_eq!(found.len(), 1, "{file}: {text}: {found:?}");
    }
}

#[test]
fn imports_down_the_layers_within_a_module_or_in_text_are_not() {
    let fine = [
        (
            "src/report/mod.rs",
            "use crate::{lesson::Lesson, outcome::Verdict};",
        ),
        (
            "src/exec/peer.rs",
            "mod tests { fn f() { super::super::capture::x(); } }",
        ),
        (
            "src/exec/mod.rs",
            "use super::plan::Replay;\nmod tests { use super::*; }",
        ),
        (
            "src/judge.rs",
            "// use crate::exec::COMPILE_LIMIT;\nlet s = \"crate::run::x\";",
        ),
        (
            "src/judge.rs",
            "/* crate::run /* nested */ crate::cli */ let r = r#\"crate::run\"#;",
        ),
        ("src/judge.rs", "fn f<'a>(x: &'a str) -> char { '\"' }\n"),
        (
            "src/cache.rs",
            "pub(crate) fn f() {}\nmacro_rules! m { () => { $crate::cli::x } }",
        ),
        ("src/lib.rs", "pub mod cli;"),
    ];
    for (file, text) in fine {
        assert_eq!(check(file, text), Vec::new(), "{file}: {text}");
    }
}

#[test]
fn a_violation_names_the_file_line_and_import() {
    let found = check("src/report/wire.rs", "\n\nx(crate::exec::relay::KEEP)");
    assert_eq!(
        found,
        vec![Violation {
            file: "src/report/wire.rs".into(),
            line: 3,
            target: "exec".into(),
            why: "`exec` and `report` share a layer and import none of each other".into(),
        }]
    );
}

/// The most lines a function of `src/` may have (see the module's doc).
const LONGEST: usize = 100;

/// Each function with a body in `code` (comments and strings blanked, see
/// [`code_only`]): its name, the line its `fn` is on, and how many lines
/// it spans to its closing brace.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(off) = code[at..].find("fn") {
        let start = at + off;
        at = start + 2;
        let before_ok = start == 0 || !is_ident(bytes[start - 1]);
        let after = code[at..].trim_start();
        let name: String = after
            .bytes()
            .take_while(|&b| is_ident(b))
            .map(char::from)
            .collect();
        // `fn(u32)` is a pointer type, `fnord` an identifier: neither starts one.
        if !before_ok || at < bytes.len() && is_ident(bytes[at]) || name.is_empty() {
            continue;
        }
        let Some(open) = code[at..].find(['{', ';']).map(|o| at + o) else {
            break;
        };
        if bytes[open] == b';' {
            continue; // a declaration without a body (a trait's)
        }
        let mut depth = 0usize;
        let mut close = open;
        for (i, b) in code[open..].bytes().enumerate() {
            match b {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                close = open + i;
                break;
            }
        }
        found.push((name, line_of(start), line_of(close) - line_of(start) + 1));
    }
    found
}

#[test]
fn no_function_of_src_is_longer_than_one_can_hold_in_mind() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut counted = 0;
    let mut long = Vec::new();
    for path in files {
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        for (name, line, lines) in functions(&code) {
            counted += 1;
            if lines > LONGEST {
                let file = path.strip_prefix(root).unwrap().display();
                long.push(format!("{file}:{line} fn {name}: {lines} lines"));
            }
        }
    }
    assert!(counted > 500, "functions found in src/: {counted}");
    assert!(
        long.is_empty(),
        "over {LONGEST} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn a_function_is_counted_from_its_fn_line_to_its_closing_brace() {
    let code = code_only(
        "/// doc\n#[test]\nfn a() {\n    let s = \"}\";\n    if x { y(); }\n}\n\
         trait T { fn b(&self); fn c(&self) -> u8 { 1 } }\n\
         fn d(f: fn(u8) -> u8) -> impl Fn() { move || { f(1); } }\n",
    );
    let got = functions(&code);
    let want = [("a", 3, 4), ("c", 7, 1), ("d", 8, 1)];
    let want: Vec<(String, usize, usize)> =
        want.iter().map(|&(n, l, c)| (n.to_owned(), l, c)).collect();
    assert_eq!(got, want);
}
