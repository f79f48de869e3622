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

/// Whether some plain cell binds a top-level variable, whose type evcxr
/// must learn from rust-analyzer to keep it for the cells below. A cell
/// that does not parse counts as one: rustc will say what is wrong, and
/// evcxr gets the analysis it expects.
pub fn needs_std_types<'a>(lessons: impl IntoIterator<Item = &'a Lesson>) -> bool {
    lessons.into_iter().any(|lesson| {
        lesson
            .cells
            .iter()
            .filter(|c| c.kind == CellKind::Plain && c.lang == Lang::Rust)
            .any(|c| binds_variables(&c.code))
    })
}

fn binds_variables(code: &str) -> bool {
    match syn::parse_str::<syn::Block>(&format!("{{\n{code}\n}}")) {
        Ok(block) => block.stmts.iter().any(|s| matches!(s, syn::Stmt::Local(_))),
        Err(_) => true,
    }
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
    fn the_empty_library_has_what_rust_analyzer_looks_for() {
        let dir = tempfile::tempdir().unwrap();
        let root = empty_std(dir.path()).unwrap();
        assert!(root.join("core/src/lib.rs").is_file());
        assert!(root.join("std/src/lib.rs").is_file());
    }
}
