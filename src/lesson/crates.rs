//! A lesson's crates (LESSON-FORMAT 1.2, "Crates"): the `:dep` lines a
//! plain cell may begin with, as an evcxr notebook writes them.
//!
//! This module owns the syntax only: which lines are `:dep` lines, what
//! they declare, and which other `:` lines are errors. The lines are blanked
//! in the cell's code (so line numbers hold) and listed on the lesson;
//! fetching and building the crates is `exec::crates`'s.

use serde::{Deserialize, Serialize};

/// One `:dep NAME = SPEC` line: a crate the cells after it may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dep {
    /// The name as written: what Cargo.toml's `[dependencies]` calls it.
    pub name: String,
    /// The value after `=`, as written (TOML: `"1"`, `{ version = … }`).
    pub spec: String,
    /// 1-based line of the `:dep` line in its file.
    pub line: usize,
}

impl Dep {
    /// The line `[dependencies]` gets.
    pub fn manifest_line(&self) -> String {
        format!("{} = {}", self.name, self.spec)
    }
}

/// What a line of a Rust cell is, to this module.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// Rust code (or blank, or a comment).
    Code,
    /// A `:dep` line.
    Dep(Result<(String, String), String>),
    /// Another evcxr command (`:vars`, `:opt`…): never run by aula.
    Command(String),
}

/// Classifies a line. `::path` is Rust, not a command.
pub fn classify(line: &str) -> Line {
    let t = line.trim_start();
    let Some(rest) = t.strip_prefix(':') else {
        return Line::Code;
    };
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Line::Code;
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if word == "dep" {
        return Line::Dep(parse(rest[3..].trim()));
    }
    Line::Command(word)
}

/// `NAME = SPEC` or a bare `NAME` (any version, as evcxr reads it).
fn parse(text: &str) -> Result<(String, String), String> {
    let (name, spec) = match text.split_once('=') {
        Some((n, s)) => (n.trim(), s.trim().to_owned()),
        None => (text, "\"*\"".to_owned()),
    };
    if name.is_empty() {
        return Err("`:dep` names no crate: write `:dep NAME = \"VERSION\"`".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("`{name}` is not a crate name"));
    }
    let table: toml::Table = toml::from_str(&format!("{name} = {spec}")).map_err(|e| {
        format!(
            "`:dep {name}`: `{spec}` is not a TOML value: {}",
            e.message()
        )
    })?;
    match table.get(name) {
        Some(toml::Value::String(_)) => {}
        Some(toml::Value::Table(t)) => {
            if t.contains_key("path") {
                return Err(format!(
                    "`:dep {name}`: a `path` crate is not supported (a lesson runs on other \
                     machines); give a version or a `git` address"
                ));
            }
        }
        _ => {
            return Err(format!(
                "`:dep {name}`: give a version (`\"1\"`) or a table (`{{ version = \"1\", features = [...] }}`)"
            ));
        }
    }
    Ok((name.to_owned(), spec))
}

/// `:dep` lines found (1-based line in the code, name, spec), and errors
/// (line, message).
pub type Taken = (Vec<(usize, String, String)>, Vec<(usize, String)>);

/// Takes the `:dep` lines a plain cell begins with (blank lines and `//`
/// comments may stand between them) out of `code`, leaving each line
/// empty. Returns them with their 1-based line within the code, and the
/// errors: another command, or a `:dep` line after the first line of code.
pub fn take_deps(code: &mut String, plain: bool) -> Taken {
    let mut deps = Vec::new();
    let mut errors = Vec::new();
    let mut in_head = plain;
    let mut out = String::with_capacity(code.len());
    for (i, line) in code.split_inclusive('\n').enumerate() {
        let n = i + 1;
        match classify(line) {
            Line::Dep(parsed) if in_head => {
                match parsed {
                    Ok((name, spec)) => deps.push((n, name, spec)),
                    Err(e) => errors.push((n, e)),
                }
                out.push_str(if line.ends_with('\n') { "\n" } else { "" });
                continue;
            }
            Line::Dep(_) if plain => errors.push((
                n,
                "a `:dep` line goes at the top of a plain cell, before its code".to_owned(),
            )),
            Line::Dep(_) => errors.push((
                n,
                "a `:dep` line goes at the top of a plain cell, not in an exercise's cell"
                    .to_owned(),
            )),
            Line::Command(word) => errors.push((
                n,
                format!("`:{word}` is an evcxr command aula does not run; only `:dep` lines may begin a plain cell"),
            )),
            Line::Code => {
                let t = line.trim();
                if !(t.is_empty() || t.starts_with("//")) {
                    in_head = false;
                }
            }
        }
        out.push_str(line);
    }
    *code = out;
    (deps, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_lines_are_taken_and_blanked_keeping_line_numbers() {
        let mut code = ":dep tokio = { version = \"1\", features = [\"full\"] }\n\n// rand\n:dep rand\nlet x = 1;\n".to_owned();
        let (deps, errors) = take_deps(&mut code, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            deps,
            [
                (
                    1,
                    "tokio".to_owned(),
                    "{ version = \"1\", features = [\"full\"] }".to_owned()
                ),
                (4, "rand".to_owned(), "\"*\"".to_owned()),
            ]
        );
        assert_eq!(code, "\n\n// rand\n\nlet x = 1;\n");
    }

    #[test]
    fn other_commands_and_late_deps_are_errors_at_their_line() {
        let mut code =
            "let a = 1;\n:dep rand = \"0.8\"\n:vars\nlet p = ::std::f64::consts::PI;\n".to_owned();
        let before = code.clone();
        let (deps, errors) = take_deps(&mut code, true);
        assert!(deps.is_empty());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 2);
        assert!(errors[0].1.contains("top of a plain cell"));
        assert_eq!(errors[1].0, 3);
        assert!(errors[1].1.contains("`:vars`"));
        assert_eq!(code, before);
        let mut server = ":dep rand = \"0.8\"\n".to_owned();
        let (deps, errors) = take_deps(&mut server, false);
        assert!(deps.is_empty());
        assert!(errors[0].1.contains("not in an exercise's cell"));
    }

    #[test]
    fn bad_dep_lines_say_why() {
        for (line, says) in [
            (":dep = \"1\"", "names no crate"),
            (":dep to kio = \"1\"", "not a crate name"),
            (":dep tokio = 1", "give a version"),
            (":dep tokio = { version = \"1\"", "not a TOML value"),
            (":dep mine = { path = \"../mine\" }", "`path` crate"),
        ] {
            let mut code = format!("{line}\n");
            let (_, errors) = take_deps(&mut code, true);
            assert!(
                errors.first().is_some_and(|(_, e)| e.contains(says)),
                "{line}: {errors:?}"
            );
        }
    }
}
