//! The Rust code aula puts around students' cells inside an evcxr context.
//!
//! Exercise cells write to files, not to evcxr's stdout pipe: evcxr reads that
//! pipe line by line and looks for its own protocol lines in it, so a cell that
//! prints without a final newline, floods, or prints `EVCXR_EXECUTION_COMPLETE`
//! would confuse or hang it. Redirecting fds 1 and 2 to files for the cell's
//! run keeps the bytes exact, lets the host watch their size, and leaves
//! evcxr's pipe to evcxr.

/// Files a wrapped exercise cell writes in its capture folder.
pub mod files {
    /// Everything the cell wrote to fd 1 while it ran.
    pub const STDOUT: &str = "stdout";
    /// Everything the cell wrote to fd 2, panic messages included.
    pub const STDERR: &str = "stderr";
    /// One line per panic or returned error:
    /// `cell-line<TAB>thread<TAB>panic|error<TAB>message`, newlines escaped as `\n`.
    pub const FAULTS: &str = "faults";
    /// Created when the cell's code starts running (after compiling, after the gate).
    pub const STARTED: &str = "started";
    /// Created when the cell's code returned normally.
    pub const FINISHED: &str = "finished";
    /// Created when a gated cell's code, compiled, starts waiting at the gate.
    pub const WAITING: &str = "waiting";
    /// Created by the host to let a waiting (already compiled) cell start.
    pub const GATE: &str = "go";
    /// Where the replayed plain cells' output and panics go.
    pub const REPLAY: &str = "replay";
}

/// Marks the end of a plain cell's stdout on evcxr's pipe. A cell whose last
/// line has no newline would otherwise glue it to evcxr's completion line.
pub const PLAIN_SENTINEL: &str = "__AULA_PLAIN_CELL_END_7f3a91__";

/// Items every context gets once, before its first cell. One `mod` keeps them
/// out of the students' namespace; evcxr recompiles items with each cell, so
/// this is kept small and free of dependencies beyond std and libc's symbols.
pub const MODULE: &str = concat!("mod __aula {\n", include_str!("cell_runtime.rs"), "}\n");

/// The same runtime as a crate of its own (see `runtime_lib`).
pub const LIBRARY_SOURCE: &str = include_str!("cell_runtime.rs");

/// What a context gets instead of [`MODULE`] when its cells link the
/// compiled runtime: the same name for it, and nothing to compile.
pub const SHIM: &str = "mod __aula { pub use ::aula_rt::*; }\n";

// The runtime is compiled with aula's tests, so rustc and clippy check it.
#[cfg(test)]
#[allow(dead_code)]
#[path = "cell_runtime.rs"]
mod cell_runtime;

/// Opens an exercise cell's block. The plain cells above it are replayed
/// inside this block, their output silenced, so the cell sees their items
/// and variables as locals: evcxr's machinery for keeping variables between
/// cells (slow, and unable to keep borrows or closures) is not involved.
pub fn exercise_open(dir: &str) -> String {
    format!("{{ let __aula_quiet = __aula::quiet({dir:?});\n")
}

/// The exercise-cell wrapper, before and after the cell's code. The prefix is
/// one line, so the cell's line `k` is line `k + 1` of the evaluated text.
pub fn exercise_prefix(dir: &str, gate: bool, host: &str, port: u16) -> String {
    format!(
        "drop(__aula_quiet); let __aula_guard = __aula::begin({dir:?}, line!(), {gate}); \
let __aula_result: ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> = \
(|| -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {{ \
#[allow(dead_code)] const HOST: &str = {host:?}; #[allow(dead_code)] const PORT: u16 = {port};\n"
    )
}

/// Closes what [`exercise_prefix`] opened. The first `;` ends a final
/// expression the cell may leave without one. The last makes the whole
/// block a statement: evcxr takes a trailing expression for a value to
/// show, and first compiles it with a display call that `()` fails, then
/// compiles it all again without: every exercise half built twice.
pub const EXERCISE_SUFFIX: &str = "\n; Ok(()) })(); __aula_guard.finish(__aula_result); };\n";

/// Around a plain cell whose output goes to the capture files.
pub fn plain_prefix(dir: &str) -> String {
    format!("__aula::plain_begin({dir:?});\n")
}

pub fn plain_suffix(dir: &str) -> String {
    format!("__aula::plain_end({dir:?});\n")
}

/// Around a plain cell that prints on evcxr's pipe (see `piped_begin`).
pub fn piped_prefix(dir: &str) -> String {
    format!("__aula::piped_begin({dir:?});\n")
}

pub const PIPED_SUFFIX: &str = "__aula::piped_end();\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_is_the_one_the_module_prints() {
        assert_eq!(MODULE.matches(PLAIN_SENTINEL).count(), 2);
    }

    #[test]
    fn capture_file_names_match_the_module() {
        for name in [
            files::STDOUT,
            files::STDERR,
            files::FAULTS,
            files::STARTED,
            files::FINISHED,
            files::GATE,
        ] {
            assert!(
                MODULE.contains(&format!("/{name}\""))
                    || MODULE.contains(&format!("join(\"{name}\")")),
                "{name}"
            );
        }
    }

    #[test]
    fn exercise_prefix_is_one_line() {
        let p = exercise_prefix("/tmp/x", true, "127.0.0.1", 4242);
        assert_eq!(p.matches('\n').count(), 1);
        assert!(p.ends_with('\n'));
        assert!(p.contains("const PORT: u16 = 4242;"));
    }
}
