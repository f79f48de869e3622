//! How much of rust-analyzer each evcxr context loads.
//!
//! evcxr keeps a rust-analyzer inside this process for every context, and
//! asks it the types of a cell's top-level variables on every evaluation,
//! so it can keep them for later cells. Loading the standard library's
//! source for that is most of a context's start-up and about 400 MB of
//! memory each. Exercise cells are blocks and have no top-level variables;
//! plain cells need the types only when they bind one with a top-level
//! `let`. When no plain cell of a run does, rust-analyzer is pointed at an
//! empty standard library (through `RUST_SRC_PATH`, which it reads when a
//! context loads), and has nothing to load. evcxr is unchanged: it asks,
//! and finds no variables, as it would for a block.

use std::path::{Path, PathBuf};

use crate::lesson::{CellKind, Lang, Lesson};

/// A variable that a plain cell keeps and whose type evcxr asks
/// rust-analyzer for: a top-level `let` without a complete type of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untyped {
    /// Where the cell stands: `path:line`, or `path:cell N:L` in a notebook.
    pub at: String,
    /// The variable's name, or the pattern's text when it binds several.
    pub variable: String,
}

/// The variables of plain cells whose types rust-analyzer must infer, to
/// keep them for the cells below; their types come from the standard
/// library's source. evcxr takes a variable's type as written when it is
/// complete (`let words: Vec<&str> = ...`), without asking. A cell that
/// does not parse counts as one: rustc will say what is wrong, and evcxr
/// gets the analysis it expects.
pub fn untyped_variables<'a>(lessons: impl IntoIterator<Item = &'a Lesson>) -> Vec<Untyped> {
    let mut found = Vec::new();
    for lesson in lessons {
        let cells = lesson.cells.iter();
        for cell in cells.filter(|c| c.kind == CellKind::Plain && c.lang == Lang::Rust) {
            found.extend(untyped_in(&cell.code).into_iter().map(|variable| Untyped {
                at: cell.origin.source.at(cell.line()),
                variable,
            }));
        }
    }
    found
}

/// Whether some plain cell keeps a variable whose type must be inferred.
pub fn needs_std_types<'a>(lessons: impl IntoIterator<Item = &'a Lesson>) -> bool {
    !untyped_variables(lessons).is_empty()
}

fn untyped_in(code: &str) -> Vec<String> {
    let Ok(block) = syn::parse_str::<syn::Block>(&format!("{{\n{code}\n}}")) else {
        return vec!["?".to_owned()];
    };
    block
        .stmts
        .iter()
        .filter_map(|s| match s {
            syn::Stmt::Local(local) => Some(local),
            _ => None,
        })
        .filter(|local| match &local.pat {
            // evcxr uses a written type that has no `_` in it as it is.
            syn::Pat::Type(typed) => {
                !matches!(*typed.pat, syn::Pat::Ident(_)) || has_inferred_part(&typed.ty)
            }
            // rust-analyzer types a literal without any library: `41` is an
            // `i32`, `"x"` a `&str`.
            syn::Pat::Ident(_) => !local.init.as_ref().is_some_and(|i| is_literal(&i.expr)),
            _ => true,
        })
        .map(|local| pattern_text(&local.pat))
        .collect()
}

/// A literal, or a negated one (`-1`).
fn is_literal(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Lit(_) => true,
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => is_literal(&u.expr),
        syn::Expr::Paren(p) => is_literal(&p.expr),
        _ => false,
    }
}

/// Whether a written type leaves a part to inference (`Vec<_>`).
fn has_inferred_part(ty: &syn::Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

/// The names a pattern binds, for a message.
fn pattern_text(pat: &syn::Pat) -> String {
    struct Names(Vec<String>);
    impl<'ast> syn::visit::Visit<'ast> for Names {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            self.0.push(p.ident.to_string());
            syn::visit::visit_pat_ident(self, p);
        }
    }
    let mut names = Names(Vec::new());
    syn::visit::Visit::visit_pat(&mut names, pat);
    names.0.join(", ")
}

/// Whether rust-analyzer can find the standard library's source where it
/// looks: `RUST_SRC_PATH`, else the sysroot's `rust-src` component. An
/// empty library (what aula points it at when no types are needed) is not
/// one.
pub fn std_source_found() -> bool {
    holds_std_source(&real_std_source())
}

fn holds_std_source(library: &Path) -> bool {
    std::fs::metadata(library.join("std/src/lib.rs")).is_ok_and(|m| m.len() > 0)
}

/// An empty standard library in `dir`, in the layout rust-analyzer looks
/// for (`core`, `alloc`, `std`, each with `src/lib.rs`).
pub fn empty_std(dir: &Path) -> std::io::Result<PathBuf> {
    let root = dir.join("rust-src-stub");
    for krate in ["core", "alloc", "std"] {
        let src = root.join(krate).join("src");
        std::fs::create_dir_all(&src)?;
        std::fs::write(src.join("lib.rs"), "")?;
    }
    Ok(root)
}

/// What rust-analyzer is pointed at (`RUST_SRC_PATH`) when that can change
/// while aula runs: the interactive course starts with the empty library
/// unless a lesson needs the real one, and a save can add a plain cell that
/// keeps a variable. A link, moved to the real library then; contexts
/// started after that load it (see `Engine::need_std_types`).
pub struct StdLink {
    link: PathBuf,
    real: PathBuf,
    full: std::sync::atomic::AtomicBool,
}

impl StdLink {
    /// The link in `dir`, pointing at the real library when `full`, else at
    /// an empty one made beside it.
    pub fn create(dir: &Path, full: bool) -> std::io::Result<StdLink> {
        let link = StdLink {
            link: dir.join("rust-src"),
            real: real_std_source(),
            full: std::sync::atomic::AtomicBool::new(full),
        };
        let target = if full {
            link.real.clone()
        } else {
            empty_std(dir)?
        };
        std::os::unix::fs::symlink(target, &link.link)?;
        Ok(link)
    }

    /// What `RUST_SRC_PATH` is set to.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// Whether the real library the link can move to holds the source
    /// (`RUST_SRC_PATH` names the link meanwhile, not the library).
    pub fn real_found(&self) -> bool {
        holds_std_source(&self.real)
    }

    /// Points the link at the real library, once; whether it moved now.
    pub fn make_full(&self) -> std::io::Result<bool> {
        use std::sync::atomic::Ordering;
        if self.full.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        // A new link renamed over the old one: a context starting meanwhile
        // sees one library or the other, never none.
        let next = self.link.with_extension("next");
        let _ = std::fs::remove_file(&next);
        std::os::unix::fs::symlink(&self.real, &next)?;
        std::fs::rename(&next, &self.link)?;
        Ok(true)
    }
}

/// Where rust-analyzer finds the standard library's source when nothing
/// points it elsewhere: `RUST_SRC_PATH` as the user set it, else the
/// sysroot's `rust-src` component.
fn real_std_source() -> PathBuf {
    if let Some(p) = std::env::var_os("RUST_SRC_PATH") {
        return PathBuf::from(p);
    }
    let sysroot = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()))
        .unwrap_or_default();
    sysroot.join("lib/rustlib/src/rust/library")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson(text: &str) -> Lesson {
        crate::lesson::parse(Path::new("l.md"), text).unwrap()
    }

    #[test]
    fn only_a_top_level_let_in_a_plain_cell_needs_the_standard_library() {
        let items = "```rust\nfn f() { let x = 1; }\nuse std::net::TcpStream;\nprintln!(\"{}\", { let y = 2; y });\n```\n";
        assert!(!needs_std_types([&lesson(items)]));
        let binds = "```rust\nlet s = String::from(\"x\");\n```\n";
        assert!(needs_std_types([&lesson(binds)]));
        // Exercise cells are blocks: their `let`s are locals.
        let exercise = "```rust,server,exercise=e\nlet l = 1;\n```\n\n```rust,client,exercise=e\nlet c = 2;\n```\n";
        assert!(!needs_std_types([&lesson(exercise)]));
        assert!(needs_std_types([&lesson("```rust\nlet = ;\n```\n")]));
    }

    #[test]
    fn a_variable_with_its_whole_type_written_needs_no_inference() {
        let typed = "```rust\nlet words: Vec<&str> = vec![\"a\"];\nlet n: u32 = 1;\nlet c = -41;\nlet s = \"x\";\n```\n";
        assert!(untyped_variables([&lesson(typed)]).is_empty());
        // evcxr asks rust-analyzer for what `_` leaves open, and for each
        // name a destructuring binds.
        let text = "# T\n\n```rust\nlet v: Vec<_> = vec![1];\nlet (a, b) = (1, 2);\nlet s = String::new();\n```\n";
        let found = untyped_variables([&lesson(text)]);
        let names: Vec<&str> = found.iter().map(|u| u.variable.as_str()).collect();
        assert_eq!(names, ["v", "a, b", "s"]);
        assert!(found.iter().all(|u| u.at == "l.md:3"), "{found:?}");
    }

    #[test]
    fn the_link_moves_from_the_empty_library_to_the_real_one_once() {
        let dir = tempfile::tempdir().unwrap();
        let link = StdLink::create(dir.path(), false).unwrap();
        assert!(link.path().join("std/src/lib.rs").is_file());
        assert_eq!(
            std::fs::read_to_string(link.path().join("std/src/lib.rs")).unwrap(),
            ""
        );
        assert!(link.make_full().unwrap());
        assert_eq!(std::fs::read_link(link.path()).unwrap(), real_std_source());
        assert!(!link.make_full().unwrap());

        let dir = tempfile::tempdir().unwrap();
        let full = StdLink::create(dir.path(), true).unwrap();
        assert_eq!(std::fs::read_link(full.path()).unwrap(), real_std_source());
        assert!(!full.make_full().unwrap());
    }

    #[test]
    fn the_empty_library_has_what_rust_analyzer_looks_for() {
        let dir = tempfile::tempdir().unwrap();
        let root = empty_std(dir.path()).unwrap();
        assert!(root.join("core/src/lib.rs").is_file());
        assert!(root.join("std/src/lib.rs").is_file());
    }
}
