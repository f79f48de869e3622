//! Code that reads files or the environment while it compiles is refused
//! before it reaches the compiler: the compiler runs as the grader, outside
//! the sandbox, so `include_str!("/etc/passwd")` would put any file the
//! grader can read into a student's program.
//!
//! The check is on tokens, not text, so comments and strings that mention
//! the names are fine, and spacing (`include_str !`) or paths
//! (`std::include_str!`) do not hide them.

use std::str::FromStr as _;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Macros that read files or the environment at compile time, and inline
/// assembly, whose `.incbin` directive reads a file.
const MACROS: &[&str] = &[
    "include",
    "include_str",
    "include_bytes",
    "env",
    "option_env",
    "asm",
    "global_asm",
    "naked_asm",
];

/// Names refused wherever they appear (a `use ... as` would rename them):
/// none of them names anything else a student needs.
const ANYWHERE: &[&str] = &[
    "include",
    "include_str",
    "include_bytes",
    "option_env",
    "asm",
    "global_asm",
    "naked_asm",
];

/// Attributes that make the compiler read a file.
const ATTRIBUTES: &[&str] = &["path", "debugger_visualizer", "link"];

/// What is named for a cell that does not tokenize on its own.
pub const UNBALANCED: &str = "unbalanced brackets or quotes";

/// The first refused construct in `code`, as the message names it
/// (`include_str!`, `#[path]`), or `None`. Code that does not tokenize on
/// its own is refused too: with one brace too many it would close the
/// block aula wraps it in and put items of its own beside it, past this
/// check (an `extern crate` that evcxr would fetch and build in the host).
pub fn refused(code: &str) -> Option<String> {
    let Ok(tokens) = TokenStream::from_str(code) else {
        return Some(UNBALANCED.to_owned());
    };
    scan(tokens, false)
}

fn name(ident: &proc_macro2::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}

fn scan(tokens: TokenStream, in_attribute: bool) -> Option<String> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Ident(ident) => {
                let n = name(ident);
                let next_is = |c: char| matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == c);
                if MACROS.contains(&n.as_str()) && next_is('!') {
                    return Some(format!("{n}!"));
                }
                if ANYWHERE.contains(&n.as_str()) {
                    return Some(format!("{n}!"));
                }
                // `use std::env as e;` would let `e!("HOME")` read the
                // environment; the module `std::env` itself is fine.
                if n == "env" && matches!(trees.get(i + 1), Some(TokenTree::Ident(a)) if a == "as")
                {
                    return Some("env!".to_owned());
                }
                if in_attribute && ATTRIBUTES.contains(&n.as_str()) {
                    return Some(format!("#[{n}]"));
                }
            }
            TokenTree::Group(group) => {
                // `#[...]` and `#![...]`: the bracket group after `#` (and `!`).
                let attribute = group.delimiter() == Delimiter::Bracket
                    && i >= 1
                    && match &trees[i - 1] {
                        TokenTree::Punct(p) if p.as_char() == '#' => true,
                        TokenTree::Punct(p) if p.as_char() == '!' => {
                            matches!(trees.get(i.wrapping_sub(2)), Some(TokenTree::Punct(h)) if h.as_char() == '#')
                        }
                        _ => false,
                    };
                if let Some(found) = scan(group.stream(), in_attribute || attribute) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn reading_files_or_the_environment_while_compiling_is_refused() {
        let cases = [
            (r#"let p = include_str!("/etc/passwd");"#, "include_str!"),
            (
                r#"let p = std::include_bytes !("/etc/passwd");"#,
                "include_bytes!",
            ),
            (r#"include!("/x.rs");"#, "include!"),
            (r#"let h = env!("HOME");"#, "env!"),
            (r#"let h = core::option_env!("HOME");"#, "option_env!"),
            (
                r#"use std::include_str as inc; inc!("/etc/passwd")"#,
                "include_str!",
            ),
            (r#"use std::env as e; e!("HOME")"#, "env!"),
            (r#"use std::{env as e};"#, "env!"),
            ("#[path = \"/etc/passwd\"] mod m;", "#[path]"),
            ("#[cfg_attr(all(), path = \"/x\")] mod m;", "#[path]"),
            (
                "#![debugger_visualizer(gdb_script_file = \"/x\")]",
                "#[debugger_visualizer]",
            ),
            (
                r#"unsafe { std::arch::asm!(".incbin \"/etc/passwd\"") }"#,
                "asm!",
            ),
            (r#"std::arch::global_asm!("");"#, "global_asm!"),
            (
                r#"macro_rules! m { () => { include_str!("/x") } }"#,
                "include_str!",
            ),
            // Closes the wrapper and declares what it likes after it.
            (r#"Ok(()) })(); fn x() { let s = "}"; "#, super::UNBALANCED),
            ("let s = \"never closed;", super::UNBALANCED),
            ("let r#include_str = 1;", "include_str!"),
        ];
        for (code, construct) in cases {
            assert_eq!(refused(code).as_deref(), Some(construct), "{code}");
        }
    }

    #[test]
    fn ordinary_code_and_mentions_in_strings_and_comments_pass() {
        let fine = [
            "let args: Vec<String> = std::env::args().collect();",
            "use std::env; let v = env::var(\"X\");",
            "// include_str!(\"/etc/passwd\")\nlet x = 1;",
            "let s = \"env!(HOME) include_bytes!\";",
            "#[derive(Debug)] struct Path { path: String }",
            "let path = std::path::Path::new(\"x\");",
            "fn link() {} link();",
        ];
        for code in fine {
            assert_eq!(refused(code), None, "{code}");
        }
    }
}
