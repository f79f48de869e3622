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
    /// One line per panic or returned error: `cell-line<TAB>thread<TAB>message`,
    /// message newlines escaped as `\n`.
    pub const FAULTS: &str = "faults";
    /// Created when the cell's code starts running (after compiling, after the gate).
    pub const STARTED: &str = "started";
    /// Created when the cell's code returned normally.
    pub const FINISHED: &str = "finished";
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
pub const MODULE: &str = r#"mod __aula {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    use std::sync::{Arc, Mutex};

    unsafe extern "C" {
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        fn dup2(old: i32, new: i32) -> i32;
        fn close(fd: i32) -> i32;
    }
    const F_DUPFD_CLOEXEC: i32 = 1030;

    fn flush() {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
    }

    // The saved fds are restored once: by the guard, or by the panic hook when
    // the cell's own thread panics (evcxr prints its panic notice afterwards,
    // and must print it on its pipe, not into our file).
    struct Saved(Mutex<Option<(i32, i32)>>);
    impl Saved {
        fn restore(&self) {
            flush();
            if let Some((out, err)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
                unsafe {
                    dup2(out, 1);
                    dup2(err, 2);
                    close(out);
                    close(err);
                }
            }
        }
    }

    fn message(info: &std::panic::PanicHookInfo<'_>) -> String {
        if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_owned()
        }
    }

    fn fault(dir: &str, line: u32, thread: &str, message: &str) {
        let escaped = message.replace('\\', "\\\\").replace('\n', "\\n");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(format!("{dir}/faults")) {
            let _ = writeln!(f, "{line}\t{thread}\t{escaped}");
        }
    }

    /// Points fds 1 and 2 at the capture files and installs the panic hook;
    /// what it returns puts them back.
    fn redirect(dir: &str, first_line: u32) -> Arc<Saved> {
        flush();
        let out = std::fs::File::create(format!("{dir}/stdout")).expect("aula: capture file");
        let err = std::fs::File::create(format!("{dir}/stderr")).expect("aula: capture file");
        let saved = unsafe {
            let saved = (fcntl(1, F_DUPFD_CLOEXEC, 10), fcntl(2, F_DUPFD_CLOEXEC, 10));
            dup2(out.as_raw_fd(), 1);
            dup2(err.as_raw_fd(), 2);
            saved
        };
        let saved = Arc::new(Saved(Mutex::new(Some(saved))));
        let main = std::thread::current().id();
        let hook_dir = dir.to_owned();
        let hook_saved = Arc::clone(&saved);
        std::panic::set_hook(Box::new(move |info: &std::panic::PanicHookInfo<'_>| {
            let msg = message(info);
            let line = info
                .location()
                .filter(|l| first_line > 0 && l.file().ends_with("lib.rs") && l.line() > first_line)
                .map_or(0, |l| l.line() - first_line);
            let current = std::thread::current();
            let name = current.name().unwrap_or("<unnamed>").to_owned();
            fault(&hook_dir, line, &name, &msg);
            eprintln!("thread '{name}' panicked: {msg}");
            if current.id() == main {
                hook_saved.restore();
            }
        }));
        saved
    }

    pub struct Guard {
        dir: String,
        saved: Arc<Saved>,
    }

    /// `first_line` is `line!()` of the line just above the cell's code, so a
    /// panic location maps back to the cell's own line numbers.
    pub fn begin(dir: &str, first_line: u32, gate: bool) -> Guard {
        if gate {
            // Bounded: the host kills this process long before, but a lost host
            // must not leave it spinning forever.
            let go = std::path::Path::new(dir).join("go");
            let start = std::time::Instant::now();
            while !go.exists() && start.elapsed() < std::time::Duration::from_secs(3600) {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        // A fresh, empty working folder for each cell.
        let cwd = format!("{dir}/cwd");
        let _ = std::fs::create_dir_all(&cwd);
        let _ = std::env::set_current_dir(&cwd);
        let saved = redirect(dir, first_line);
        let _ = std::fs::write(format!("{dir}/started"), b"");
        Guard { dir: dir.to_owned(), saved }
    }

    /// Silences the plain cells replayed before an exercise cell: their
    /// output, and any panic, go to `DIR/replay/`.
    pub fn quiet(dir: &str) -> Guard {
        let replay = format!("{dir}/replay");
        let _ = std::fs::create_dir_all(&replay);
        let saved = redirect(&replay, 0);
        Guard { dir: replay, saved }
    }

    impl Guard {
        pub fn finish(self, result: Result<(), Box<dyn std::error::Error>>) {
            match result {
                Ok(()) => {
                    flush();
                    let _ = std::fs::write(format!("{}/finished", self.dir), b"");
                }
                Err(e) => fault(&self.dir, 0, "main", &format!("error returned with `?`: {e}")),
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.saved.restore();
            // Changing the hook while unwinding aborts the process; the next
            // cell's `begin` replaces it anyway.
            if !std::thread::panicking() {
                let _ = std::panic::take_hook();
            }
        }
    }

    // A plain cell keeps its top-level state, so it cannot run inside a
    // guard's block: `plain_begin` and `plain_end` are statements around it,
    // and the redirection waits between them here (one compiled cell shares
    // this static; the next cell's is another).
    static PLAIN: Mutex<Option<Arc<Saved>>> = Mutex::new(None);

    pub fn plain_begin(dir: &str) {
        let saved = redirect(dir, 0);
        *PLAIN.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
    }

    pub fn plain_end(dir: &str) {
        if let Some(saved) = PLAIN.lock().unwrap_or_else(|e| e.into_inner()).take() {
            saved.restore();
        }
        let _ = std::panic::take_hook();
        let _ = std::fs::write(format!("{dir}/finished"), b"");
    }

    /// For a cell whose `?` would skip `plain_end`: it prints on evcxr's
    /// pipe, followed by a sentinel line, and panics are still recorded.
    pub fn piped_begin(dir: &str) {
        let hook_dir = dir.to_owned();
        std::panic::set_hook(Box::new(move |info: &std::panic::PanicHookInfo<'_>| {
            let name = std::thread::current().name().unwrap_or("<unnamed>").to_owned();
            fault(&hook_dir, 0, &name, &message(info));
            print!("\n__AULA_PLAIN_CELL_END_7f3a91__\n");
            flush();
        }));
    }

    pub fn piped_end() {
        print!("\n__AULA_PLAIN_CELL_END_7f3a91__\n");
        flush();
        let _ = std::panic::take_hook();
    }
}
"#;

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

/// Closes what [`exercise_prefix`] opened. The `;` ends a final expression
/// the cell may leave without one.
pub const EXERCISE_SUFFIX: &str = "\n; Ok(()) })(); __aula_guard.finish(__aula_result); }\n";

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
