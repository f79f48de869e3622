//! A student's progress: a plain-text file beside the lessons, one line per
//! exercise tried, readable and copyable between machines.
//!
//! ```text
//! # aula progress: safe to copy, edit or delete
//! current lessons/07-sockets.md::tcp-echo
//! done lessons/00-aula.md::ola
//! failing lessons/07-sockets.md::tcp-echo
//! ```
//!
//! Deleting it loses nothing a rerun cannot rebuild from the result cache;
//! a damaged one is rebuilt, with a warning, never a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plan::UnitId;

/// The file's name, in the folder of the course's lessons.
pub const FILE_NAME: &str = "aula-progress.txt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Done,
    Failing,
    NotTried,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failing => "failing",
            Status::NotTried => "not_tried",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.word()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The exercise the student is on.
    pub current: Option<UnitId>,
    /// Statuses by unit, in the order of their text (the file's order);
    /// exercises never tried are absent.
    pub statuses: BTreeMap<UnitId, Status>,
}

/// Why a progress file was not taken as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    pub line: usize,
    pub text: String,
}

impl Progress {
    /// Parses the file's text; the first line it cannot read makes the whole
    /// file damaged.
    pub fn parse(text: &str) -> Result<Progress, Damaged> {
        let mut p = Progress::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let damaged = || Damaged {
                line: i + 1,
                text: line.to_owned(),
            };
            let (word, name) = line.split_once(' ').ok_or_else(damaged)?;
            let unit: UnitId = name.trim().parse().map_err(|_| damaged())?;
            let status = match word {
                "current" => {
                    p.current = Some(unit);
                    continue;
                }
                "done" => Status::Done,
                "failing" => Status::Failing,
                _ => return Err(damaged()),
            };
            p.statuses.insert(unit, status);
        }
        Ok(p)
    }

    pub fn render(&self) -> String {
        let mut out = String::from("# aula progress: safe to copy, edit or delete\n");
        if let Some(c) = &self.current {
            out.push_str(&format!("current {c}\n"));
        }
        for (name, status) in &self.statuses {
            if *status != Status::NotTried {
                out.push_str(&format!("{} {name}\n", status.word()));
            }
        }
        out
    }

    pub fn status(&self, unit: &UnitId) -> Status {
        self.statuses.get(unit).copied().unwrap_or(Status::NotTried)
    }
}

/// Where a course's progress lives: beside its first lesson path.
pub fn path_for(lesson_paths: &[PathBuf]) -> PathBuf {
    let first = lesson_paths
        .first()
        .map_or_else(|| PathBuf::from("lessons"), Clone::clone);
    let dir = if first.is_dir() {
        first
    } else {
        first
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    dir.join(FILE_NAME)
}

/// Reads the progress file: none yet is an empty progress; a damaged one is
/// an empty progress and the reason.
pub fn load(path: &Path) -> (Progress, Option<Damaged>) {
    match std::fs::read_to_string(path) {
        Ok(text) => match Progress::parse(&text) {
            Ok(p) => (p, None),
            Err(d) => (Progress::default(), Some(d)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Progress::default(), None),
        Err(e) => (
            Progress::default(),
            Some(Damaged {
                line: 0,
                text: e.to_string(),
            }),
        ),
    }
}

/// Writes the file whole or not at all ([`crate::fs`]).
pub fn save(path: &Path, progress: &Progress) -> std::io::Result<()> {
    crate::fs::write_atomically(path, progress.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit from its text, as the file has it.
    fn u(text: &str) -> UnitId {
        text.parse().unwrap()
    }

    #[test]
    fn progress_round_trips_and_damage_is_reported_with_its_line() {
        let mut p = Progress {
            current: Some(u("l/07.md::tcp-echo")),
            ..Default::default()
        };
        p.statuses.insert(u("l/00.md::ola"), Status::Done);
        p.statuses.insert(u("l/07.md::tcp-echo"), Status::Failing);
        let text = p.render();
        assert_eq!(Progress::parse(&text), Ok(p.clone()));
        assert_eq!(p.status(&u("l/07.md::udp")), Status::NotTried);

        let bad = "# x\ndone l/00.md::ola\nfinished l/07.md::tcp\n";
        assert_eq!(
            Progress::parse(bad),
            Err(Damaged {
                line: 3,
                text: "finished l/07.md::tcp".into()
            })
        );
        assert!(Progress::parse("done\n").is_err());
        assert!(Progress::parse("done no-qualified-name\n").is_err());
    }

    #[test]
    fn saving_replaces_the_file_whole_and_loading_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(load(&path), (Progress::default(), None));
        let mut p = Progress::default();
        p.statuses.insert(u("a.md::x"), Status::Done);
        save(&path, &p).unwrap();
        assert_eq!(load(&path), (p, None));
        std::fs::write(&path, "garbage line\n").unwrap();
        let (got, damage) = load(&path);
        assert_eq!(got, Progress::default());
        assert_eq!(damage.unwrap().line, 1);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
