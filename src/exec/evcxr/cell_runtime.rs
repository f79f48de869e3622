// aula's runtime inside an evcxr context: put in front of the first cell of
// every context as `mod __aula { ... }` (see `runtime::MODULE`), and compiled
// by aula's own tests and lints as an ordinary module.
//
// Kept small and free of dependencies beyond std and libc's symbols: evcxr
// recompiles items with each cell.

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

/// One line of the `faults` file: `line<TAB>thread<TAB>kind<TAB>message`.
fn fault(dir: &str, line: u32, thread: &str, kind: &str, message: &str) {
    let escaped = message.replace('\\', "\\\\").replace('\n', "\\n");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(format!("{dir}/faults"))
    {
        let _ = writeln!(f, "{line}\t{thread}\t{kind}\t{escaped}");
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
        fault(&hook_dir, line, &name, "panic", &msg);
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
        // Compiled: what the host waits for now is the server, not rustc.
        let _ = std::fs::write(format!("{dir}/waiting"), b"");
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
    Guard {
        dir: dir.to_owned(),
        saved,
    }
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
            Err(e) => fault(&self.dir, 0, "main", "error", &e.to_string()),
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
    let _ = std::fs::write(format!("{dir}/started"), b"");
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
    let _ = std::fs::write(format!("{dir}/started"), b"");
    let hook_dir = dir.to_owned();
    std::panic::set_hook(Box::new(move |info: &std::panic::PanicHookInfo<'_>| {
        let name = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_owned();
        fault(&hook_dir, 0, &name, "panic", &message(info));
        print!("\n__AULA_PLAIN_CELL_END_7f3a91__\n");
        flush();
    }));
}

pub fn piped_end() {
    print!("\n__AULA_PLAIN_CELL_END_7f3a91__\n");
    flush();
    let _ = std::panic::take_hook();
}
