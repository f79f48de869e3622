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
