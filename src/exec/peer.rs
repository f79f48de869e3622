//! Peer cells in Python: an exercise's server or client run by `python3` as
//! a process, speaking the same capture protocol as the Rust runtime
//! (`cell_runtime.rs`): the gate, `started`, `finished`, `stdout`, `stderr`
//! and `faults` in its capture folder. So readiness, verdicts, limits and
//! output checks are the Rust cells' own.
//!
//! When grading confines students' code, the process is aula itself, run
//! again: it confines itself from a rules file at the top of `main`, as a
//! context's child does, then becomes `python3` ([`exec_from_env`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::lesson::{Lang, Lesson, LessonError};

/// Set on a confined trampoline: the program to become once confined.
pub const EXEC_ENV: &str = "AULA_PEER_EXEC";

/// The interpreter aula runs Python cells with.
pub const PYTHON: &str = "python3";

/// Runs a cell's code as `__main__` with `HOST` and `PORT` as globals. A
/// traceback is the cell's panic: its last line is the message, its last
/// frame in the cell the line. `-u` keeps output unbuffered, so a server
/// stopped at the end of its exercise has written all it printed.
const RUNNER: &str = r#"
import os, sys, time, threading, traceback
d, host, port, gate, code_path = sys.argv[1:6]
def fault(line, thread, kind, message):
    message = message.replace("\\", "\\\\").replace("\n", "\\n")
    with open(os.path.join(d, "faults"), "a", encoding="utf-8") as f:
        f.write(f"{line}\t{thread}\t{kind}\t{message}\n")
def cell_line(tb):
    frames = [f for f in traceback.extract_tb(tb) if f.filename == "<cell>"]
    return frames[-1].lineno if frames else 0
def cell_frames(tb):
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    return tb
def last_line(e):
    return traceback.format_exception_only(type(e), e)[-1].strip()
if gate == "1":
    begun = time.monotonic()
    go = os.path.join(d, "go")
    while not os.path.exists(go) and time.monotonic() - begun < 3600:
        time.sleep(0.002)
cwd = os.path.join(d, "cwd")
os.makedirs(cwd, exist_ok=True)
os.chdir(cwd)
for fd, name in ((1, "stdout"), (2, "stderr")):
    f = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(f, fd)
    os.close(f)
def on_thread_error(args):
    if args.exc_type is SystemExit:
        return
    fault(cell_line(args.exc_traceback), args.thread.name, "panic", last_line(args.exc_value))
    traceback.print_exception(args.exc_type, args.exc_value, cell_frames(args.exc_traceback))
threading.excepthook = on_thread_error
with open(code_path, encoding="utf-8") as f:
    code = f.read()
open(os.path.join(d, "started"), "w").close()
scope = {"__name__": "__main__", "__builtins__": __builtins__, "HOST": host, "PORT": int(port)}
try:
    exec(compile(code, "<cell>", "exec"), scope)
except SystemExit as e:
    if e.code not in (None, 0):
        sys.stdout.flush()
        os._exit(e.code if isinstance(e.code, int) else 1)
except BaseException as e:
    fault(cell_line(e.__traceback__), "main", "panic", last_line(e))
    traceback.print_exception(type(e), e, cell_frames(e.__traceback__))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(101)
sys.stdout.flush()
open(os.path.join(d, "finished"), "w").close()
"#;

/// The Python cells of `lessons` when `python3` is not installed, each as
/// an error at its line; none when it is, or when no cell needs it.
pub fn missing_python(lessons: &[Lesson]) -> Vec<LessonError> {
    let cells: Vec<LessonError> = lessons
        .iter()
        .flat_map(|l| l.cells.iter())
        .filter(|c| c.lang == Lang::Python)
        .map(|c| LessonError {
            path: c.origin.path().to_path_buf(),
            line: Some(c.line()),
            cell: c.origin.source.notebook.as_ref().map(|m| m.place(c.line())),
            message: format!(
                "this cell runs with `{PYTHON}`, which is not installed here (or not on PATH)"
            ),
        })
        .collect();
    if cells.is_empty() || python_available() {
        Vec::new()
    } else {
        cells
    }
}

/// Whether `python3` can be run here.
pub fn python_available() -> bool {
    Command::new(PYTHON)
        .arg("-c")
        .arg("")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The command that runs `code` as a peer with its capture folder `dir`.
/// `confine`: the rules file the process confines itself with first.
pub fn python_command(
    code: &str,
    dir: &Path,
    (host, port, gate): (&str, u16, bool),
    confine: Option<&Path>,
) -> Result<Command> {
    let code_path = dir.join("cell.py");
    std::fs::write(&code_path, code).with_context(|| format!("writing {}", code_path.display()))?;
    let mut command = match confine {
        Some(rules) => {
            let mut c = Command::new(std::env::current_exe()?);
            super::sandbox::clean_environment(&mut c);
            c.env(super::sandbox::confine::RULES_ENV, rules)
                .env(EXEC_ENV, PYTHON);
            c
        }
        None => Command::new(PYTHON),
    };
    command
        .args(["-I", "-u", "-c", RUNNER])
        .arg(dir)
        .arg(host)
        .arg(port.to_string())
        .arg(if gate { "1" } else { "0" })
        .arg(&code_path)
        .env("AULA_HOST", host)
        .env("AULA_PORT", port.to_string());
    Ok(command)
}

/// In aula's `main`, after confining itself: becomes the program the host
/// asked for, with the arguments it was given. Returns only when not asked.
pub fn exec_from_env() {
    let Some(program) = std::env::var_os(EXEC_ENV) else {
        return;
    };
    use std::os::unix::process::CommandExt as _;
    let error = Command::new(PathBuf::from(program))
        .args(std::env::args_os().skip(1))
        .env_remove(EXEC_ENV)
        .env_remove(super::sandbox::confine::RULES_ENV)
        .exec();
    eprintln!("aula: cannot run {PYTHON}: {error}");
    std::process::exit(127);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(code: &str) -> Option<(tempfile::TempDir, std::process::ExitStatus)> {
        if !python_available() {
            eprintln!("python3 is not installed: skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = python_command(code, dir.path(), ("127.0.0.1", 4242, false), None)
            .unwrap()
            .status()
            .unwrap();
        Some((dir, status))
    }

    #[test]
    fn a_peer_sees_host_and_port_as_globals_and_in_its_environment() {
        let Some((dir, status)) = run(
            "import os\nprint(HOST, PORT, end='')\nprint('', os.environ['AULA_HOST'], os.environ['AULA_PORT'])\n",
        ) else {
            return;
        };
        assert!(status.success());
        let out = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        assert_eq!(out, "127.0.0.1 4242 127.0.0.1 4242\n");
        assert!(dir.path().join("started").exists());
        assert!(dir.path().join("finished").exists());
    }

    #[test]
    fn a_traceback_is_a_panic_with_its_last_line_at_the_cells_line() {
        let Some((dir, status)) = run("print('before')\nx = {}\nx['chave']\n") else {
            return;
        };
        assert_eq!(status.code(), Some(101));
        assert!(!dir.path().join("finished").exists());
        let faults = super::super::evcxr::capture::parse_faults(
            &std::fs::read_to_string(dir.path().join("faults")).unwrap(),
        );
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].message, "KeyError: 'chave'");
        assert_eq!(faults[0].cell_line, 3);
        let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
        assert!(stderr.contains("Traceback"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stdout")).unwrap(),
            "before\n"
        );
    }
}
