//! A reference's own halves, compiled once per grading batch with plain
//! rustc and run as processes, so each check compiles only the student's
//! side. The reference is the instructor's code: it runs in the lane's
//! network namespace but outside the students' sandbox.
//!
//! A half that does not compile as a program of its own (one that uses
//! `HOST` or `PORT` in a nested item, where they are not constants here)
//! simply runs through evcxr, as before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::evcxr::runtime;
use crate::lesson::Lesson;
use crate::plan::Replay;

/// Compiled halves by cell index.
#[derive(Debug, Default)]
pub struct Natives {
    bins: HashMap<usize, PathBuf>,
}

impl Natives {
    pub fn none() -> Natives {
        Natives::default()
    }

    pub fn get(&self, cell: usize) -> Option<&Path> {
        self.bins.get(&cell).map(PathBuf::as_path)
    }

    /// These halves but those of `cells` (the student's, in a check).
    pub fn without(&self, cells: &[usize]) -> Natives {
        let mut bins = self.bins.clone();
        bins.retain(|cell, _| !cells.contains(cell));
        Natives { bins }
    }

    pub fn len(&self) -> usize {
        self.bins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// Compiles `cells` of `lesson` into `dir`, on up to `jobs` threads.
    /// Cells that do not compile are left out, with rustc's first error.
    pub fn build(
        lesson: &Lesson,
        cells: &[usize],
        replay: &[Replay],
        dir: &Path,
        opt_level: &str,
        crates: Option<&super::crates::Built>,
        jobs: usize,
    ) -> (Natives, Vec<(usize, String)>) {
        let flags = crates.map(|c| c.rustc_flags()).unwrap_or_default();
        let _ = std::fs::create_dir_all(dir);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..jobs.max(1).min(cells.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(&cell) = cells.get(i) else { break };
                        let built = compile(lesson, cell, replay, dir, opt_level, &flags);
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((cell, built));
                    }
                });
            }
        });
        let mut natives = Natives::default();
        let mut failed = Vec::new();
        for (cell, built) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            match built {
                Ok(bin) => {
                    natives.bins.insert(cell, bin);
                }
                Err(e) => failed.push((cell, e)),
            }
        }
        failed.sort();
        (natives, failed)
    }
}

/// The program of one half: the plain cells above it replayed (silenced),
/// then the cell wrapped by the runtime, as in a context. Its arguments are
/// the capture folder, `HOST`, `PORT` and whether to wait at the gate.
pub fn source(lesson: &Lesson, index: usize, replay: &[Replay]) -> String {
    let mut code = String::from("#![allow(warnings)]\n");
    code.push_str(runtime::MODULE);
    code.push_str(
        "fn main() {\n\
         let __aula_args: ::std::vec::Vec<::std::string::String> = ::std::env::args().collect();\n\
         let __aula_dir: &str = &__aula_args[1];\n\
         let HOST: &str = &__aula_args[2];\n\
         let PORT: u16 = __aula_args[3].parse().unwrap_or(0);\n\
         let __aula_gate: bool = __aula_args[4] == \"1\";\n\
         { let __aula_quiet = __aula::quiet(__aula_dir);\n",
    );
    for r in replay.iter().filter(|r| r.index < index) {
        let plain = &lesson.cell(r.index).code;
        if r.wrapped {
            code.push_str(&format!("{{\n{plain}\n}}\n"));
        } else {
            code.push_str(&format!("{plain}\n"));
        }
    }
    code.push_str(
        "drop(__aula_quiet); let __aula_guard = __aula::begin(__aula_dir, line!(), __aula_gate); \
         let __aula_result: ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> = \
         (|| -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {\n",
    );
    code.push_str(&lesson.cell(index).code);
    code.push_str("\n; Ok(()) })(); __aula_guard.finish(__aula_result); }\n}\n");
    code
}

fn compile(
    lesson: &Lesson,
    index: usize,
    replay: &[Replay],
    dir: &Path,
    opt_level: &str,
    crates: &[String],
) -> Result<PathBuf, String> {
    let src = dir.join(format!("half-{index}.rs"));
    let bin = dir.join(format!("half-{index}"));
    std::fs::write(&src, source(lesson, index, replay)).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("rustc")
        .args(["--edition", "2021", "--crate-type", "bin", "-C"])
        .arg(format!("opt-level={opt_level}"))
        .args(crates)
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .map_err(|e| format!("running rustc: {e}"))?;
    if out.status.success() {
        Ok(bin)
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        Err(text.lines().next().unwrap_or("rustc failed").to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_replays_the_plain_cells_above_it_and_reads_its_port_at_run_time() {
        let lesson = crate::lesson::parse(
            Path::new("l.md"),
            "```rust\nfn twice(x: u16) -> u16 { x * 2 }\n```\n\n```rust,server,exercise=e\nprintln!(\"{}\", twice(PORT));\n```\n\n```rust,client,exercise=e\n```\n",
        )
        .unwrap();
        let replay = [Replay {
            index: 0,
            wrapped: false,
        }];
        let dir = tempfile::tempdir().unwrap();
        let (natives, failed) = Natives::build(&lesson, &[1], &replay, dir.path(), "0", None, 1);
        assert!(failed.is_empty(), "{failed:?}");
        let capture = dir.path().join("cap");
        std::fs::create_dir(&capture).unwrap();
        let status = std::process::Command::new(natives.get(1).unwrap())
            .args([capture.to_str().unwrap(), "127.0.0.1", "21", "0"])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(capture.join("stdout")).unwrap(),
            "42\n"
        );
        assert!(capture.join("finished").exists());
    }
}
