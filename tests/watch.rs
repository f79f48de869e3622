//! The interactive course, driven as a student drives it: the real binary
//! in a pseudo-terminal, keys typed, lesson files saved, the screen read.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// aula running in a pseudo-terminal, with everything it drew.
struct Session {
    child: Child,
    master: std::fs::File,
    drawn: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    fn start(dir: &Path, cache: &Path, args: &[&str]) -> Session {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let size = rustix::termios::Winsize {
            ws_row: 50,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, size).unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_aula"));
        command
            .args(args)
            .current_dir(dir)
            .env("AULA_CACHE_DIR", cache)
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("TERM", "xterm")
            // The same on a machine without `rust-src`: rust-analyzer types
            // `String` from this small library once the course needs it.
            .env("RUST_SRC_PATH", root().join("tests/fixtures/std-src"))
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and the ioctl are plain system calls, fine between
        // fork and exec.
        unsafe {
            command.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin().as_fd())?;
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        let master = std::fs::File::from(master);
        let drawn = Arc::new(Mutex::new(Vec::new()));
        {
            let mut reader = master.try_clone().unwrap();
            let drawn = Arc::clone(&drawn);
            // Ends when the terminal closes (the child and the test are gone).
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    drawn.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Session {
            child,
            master,
            drawn,
        }
    }

    /// The screen as last drawn: what came after the last clear, as text.
    fn screen(&self) -> String {
        let drawn = self.drawn.lock().unwrap();
        let text = String::from_utf8_lossy(&drawn).into_owned();
        let last = text.rfind("\u{1b}[2J").map_or(0, |i| i + 4);
        strip_escapes(&text[last..]).replace('\r', "")
    }

    /// Waits (at most three minutes) until the screen shows `text`.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed `{text}`; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn press(&mut self, key: &str) {
        self.master.write_all(key.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Quits with `q` and waits for the exit status.
    fn quit(mut self) -> Option<i32> {
        self.press("q");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("aula did not quit on `q`");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Text without the terminal's control sequences (`ESC [ ... final`, and
/// two-character `ESC x`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next_if_eq(&'[').is_some() {
            // Parameters and intermediates, then one final byte.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn course() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let lessons = dir.path().join("lessons");
    std::fs::create_dir_all(&lessons).unwrap();
    let lesson = lessons.join("01-first.md");
    std::fs::copy(root().join("tests/fixtures/course/01-first.md"), &lesson).unwrap();
    (dir, lesson)
}

/// Saves the lesson the way an editor does: a whole new text.
fn save(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_student_fails_fixes_and_moves_on_and_progress_survives_a_restart() {
    let (dir, lesson) = course();
    let cache = tempfile::tempdir().unwrap();
    let mut s = Session::start(dir.path(), cache.path(), &["watch"]);

    // The first exercise that does not pass, with its verdict.
    let screen = s.wait_for("greet: panic");
    assert!(
        screen.contains("lessons/01-first.md (lesson 1 of 1) · greet"),
        "{screen}"
    );
    // Untouched, it says what to do once, and where: not the panic's
    // stderr, nor the client's output that follows from it.
    assert!(
        screen.contains(
            "the server (line 15) is yours to write: your solution goes between lines 22 and 24"
        ),
        "{screen}"
    );
    for consequence in ["not yet implemented", "mismatch", "stderr", "expected"] {
        assert!(!screen.contains(consequence), "{consequence}: {screen}");
    }
    assert!(screen.contains("0/2 exercises done"), "{screen}");

    // `h` shows the hint of a failing exercise.
    s.press("h");
    s.wait_for("`answer_for` returns what `greeting` makes");

    // Saving a fix runs it again, and it passes.
    let original = std::fs::read_to_string(&lesson).unwrap();
    let fixed = original.replacen("    todo!();\n", "    greeting(name)\n", 1);
    save(&lesson, &fixed);
    let screen = s.wait_for("greet passes");
    assert!(screen.contains("1/2 exercises done"), "{screen}");

    // A lesson saved half-written shows its error at its line, and the
    // session goes on.
    save(
        &lesson,
        &fixed.replace("rust,server,exercise=second", "rust,serer,exercise=second"),
    );
    let screen = s.wait_for("cannot run as they are");
    assert!(screen.contains("lessons/01-first.md:"), "{screen}");
    assert!(screen.contains("did you mean `server`?"), "{screen}");
    save(&lesson, &fixed);
    s.wait_for("greet passes");

    // `n` moves on to the next exercise and runs it.
    s.press("n");
    let screen = s.wait_for("second: panic");
    assert!(screen.contains("· second"), "{screen}");
    assert_eq!(s.quit(), Some(0));

    let progress = std::fs::read_to_string(dir.path().join("lessons/aula-progress.txt")).unwrap();
    assert!(
        progress.contains("done lessons/01-first.md::greet"),
        "{progress}"
    );
    assert!(
        progress.contains("current lessons/01-first.md::second"),
        "{progress}"
    );

    // Opened again, the course is where the student left it.
    let s = Session::start(dir.path(), cache.path(), &[]);
    let screen = s.wait_for("second: panic");
    assert!(screen.contains("1/2 exercises done"), "{screen}");
    assert_eq!(s.quit(), Some(0));
}

#[test]
fn a_damaged_progress_file_is_rebuilt_with_a_warning_and_list_shows_statuses() {
    let (dir, _lesson) = course();
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lessons/aula-progress.txt"),
        "half a line\n",
    )
    .unwrap();
    let s = Session::start(dir.path(), cache.path(), &["watch", "--manual-run"]);
    let screen = s.wait_for("greet: panic");
    assert!(screen.contains("could not be read (line 1)"), "{screen}");
    assert!(screen.contains("press r to run again"), "{screen}");
    assert_eq!(s.quit(), Some(0));

    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["list", "--format", "json"])
        .current_dir(dir.path())
        .env("AULA_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exercises = list["lessons"][0]["exercises"].as_array().unwrap();
    let statuses: Vec<(&str, &str)> = exercises
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![("greet", "failing"), ("second", "not_tried")]
    );
    assert_eq!(list["current"], "lessons/01-first.md::greet");
}

#[test]
fn without_a_terminal_aula_prints_what_aula_run_prints() {
    let (dir, _lesson) = course();
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .current_dir(dir.path())
        .env("AULA_CACHE_DIR", cache.path())
        .env("LANG", "pt_BR.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    // In Portuguese, since LANG asks for it.
    assert!(text.contains("FALHA greet"), "{text}");
    assert!(
        text.contains("2 exercícios: 0 passaram, 2 falharam"),
        "{text}"
    );
    // Both exercises are untouched copies: what to do, in Portuguese.
    assert!(text.contains("é para você escrever"), "{text}");
    assert!(!text.contains("not yet implemented"), "{text}");
}

#[test]
fn a_notebook_course_reruns_when_the_notebook_is_saved() {
    let (dir, lesson) = course();
    let notebook = lesson.with_extension("ipynb");
    let out = Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["convert", "lessons/01-first.md", "--to", "ipynb", "--out"])
        .arg(&notebook)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&lesson).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let s = Session::start(dir.path(), cache.path(), &["watch"]);
    let screen = s.wait_for("greet: panic");
    assert!(screen.contains("lessons/01-first.ipynb"), "{screen}");
    // Jupyter saves the whole notebook again; the fix is in a cell's source.
    let original = std::fs::read_to_string(&notebook).unwrap();
    let fixed = original.replacen("    todo!();\\n", "    greeting(name)\\n", 1);
    assert_ne!(fixed, original);
    save(&notebook, &fixed);
    let screen = s.wait_for("greet passes");
    assert!(screen.contains("1/2 exercises done"), "{screen}");
    assert_eq!(s.quit(), Some(0));
}

#[test]
fn a_save_that_adds_a_cell_keeping_a_variable_gets_the_standard_library_types() {
    // The course keeps no variable, so aula starts rust-analyzer without
    // the standard library; evcxr needs it for `String`'s type below.
    let (dir, lesson) = course();
    let cache = tempfile::tempdir().unwrap();
    let s = Session::start(dir.path(), cache.path(), &["watch"]);
    s.wait_for("greet: panic");
    let original = std::fs::read_to_string(&lesson).unwrap();
    let keeps = original
        .replacen("    todo!();\n", "    greeting(name)\n", 1)
        .replacen(
            "## Greet\n",
            "```rust\nlet who = String::from(\"ana\");\n```\n\n## Greet\n",
            1,
        )
        .replacen(
            "s.write_all(b\"ana\\n\").unwrap();",
            "s.write_all(format!(\"{who}\\n\").as_bytes()).unwrap();",
            1,
        );
    assert_eq!(keeps.matches("who").count(), 2, "{keeps}");
    save(&lesson, &keeps);
    let screen = s.wait_for("greet passes");
    assert!(screen.contains("1/2 exercises done"), "{screen}");
    assert_eq!(s.quit(), Some(0));
}

#[test]
fn the_course_builds_a_lessons_crates_once_saying_so_and_says_why_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let lessons = dir.path().join("lessons");
    std::fs::create_dir_all(&lessons).unwrap();
    let lesson = lessons.join("01-crates.md");
    let text = "# Crates\n\n```rust\n:dep itoa = \"1\"\n```\n\n\
                ```rust,server,exercise=numero\nlet l = std::net::TcpListener::bind((HOST, PORT))?;\nlet _ = l.accept()?;\n\
                let mut b = itoa::Buffer::new();\nprintln!(\"{}\", b.format(42));\n```\n\n```output\n42\n```\n\n\
                ```rust,client,exercise=numero\nstd::net::TcpStream::connect((HOST, PORT))?;\n```\n";
    save(&lesson, text);
    let cache = tempfile::tempdir().unwrap();
    let s = Session::start(dir.path(), cache.path(), &["watch"]);
    let screen = s.wait_for("numero passes");
    assert!(
        screen.contains("The lesson's crates (itoa) are built"),
        "{screen}"
    );
    // A crate that cannot be had: the notice names the line and what cargo
    // said, and the exercise is not graded as the student's failure alone.
    save(
        &lesson,
        &text.replace(":dep itoa", ":dep aula-no-such-crate-7f3a"),
    );
    let screen = s.wait_for("fix the `:dep` line and save");
    assert!(
        screen.contains(
            "lessons/01-crates.md:4: `:dep aula-no-such-crate-7f3a` could not be fetched or built"
        ),
        "{screen}"
    );
}
