//! The folder a wrapped exercise cell writes into (see `runtime::files`), read
//! from the host side.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::runtime::files;
use crate::observation::{Fault, FaultKind};

/// Parses the `faults` file: `cell-line<TAB>thread<TAB>kind<TAB>message` per
/// line, `kind` being `panic` or `error` (a `?` that returned one).
pub fn parse_faults(text: &str) -> Vec<Fault> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, '\t');
            let cell_line = parts.next()?.parse().ok()?;
            let thread = parts.next()?.to_owned();
            let kind = match parts.next()? {
                "panic" => FaultKind::Panic,
                "error" => FaultKind::Error,
                _ => return None,
            };
            let message = unescape(parts.next()?);
            Some(Fault {
                kind,
                cell_line,
                thread,
                message,
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A cell's capture folder; removed when dropped, once what the cell wrote
/// has been read.
pub struct Capture {
    dir: PathBuf,
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a cell wrote, at most `cap` bytes of it.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub text: String,
    /// The file's whole size: more than `text` holds when it was cut.
    pub bytes: u64,
}

impl Capture {
    pub fn create(dir: PathBuf) -> std::io::Result<Capture> {
        std::fs::create_dir_all(&dir)?;
        Ok(Capture { dir })
    }

    /// The folder as the cell's code names it.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn started(&self) -> bool {
        self.file(files::STARTED).exists()
    }

    pub fn started_path(&self) -> PathBuf {
        self.file(files::STARTED)
    }

    pub fn finished(&self) -> bool {
        self.file(files::FINISHED).exists()
    }

    pub fn open_gate(&self) {
        let _ = std::fs::write(self.file(files::GATE), b"");
    }

    pub fn stdout_path(&self) -> PathBuf {
        self.file(files::STDOUT)
    }

    pub fn stdout_bytes(&self) -> u64 {
        std::fs::metadata(self.file(files::STDOUT)).map_or(0, |m| m.len())
    }

    pub fn stdout(&self, cap: usize) -> Captured {
        read_capped(&self.file(files::STDOUT), cap)
    }

    pub fn stderr(&self, cap: usize) -> Captured {
        read_capped(&self.file(files::STDERR), cap)
    }

    pub fn faults(&self) -> Vec<Fault> {
        std::fs::read_to_string(self.file(files::FAULTS))
            .map(|t| parse_faults(&t))
            .unwrap_or_default()
    }

    /// Panics of the plain cells replayed before an exercise cell.
    pub fn replay_faults(&self) -> Vec<Fault> {
        std::fs::read_to_string(self.dir.join(files::REPLAY).join(files::FAULTS))
            .map(|t| parse_faults(&t))
            .unwrap_or_default()
    }
}

/// Reads at most `cap` bytes, so a flooded file never fills the host's memory.
fn read_capped(path: &Path, cap: usize) -> Captured {
    let Ok(file) = std::fs::File::open(path) else {
        return Captured::default();
    };
    let bytes = file.metadata().map_or(0, |m| m.len());
    let mut buf = Vec::new();
    let _ = file.take(cap as u64).read_to_end(&mut buf);
    Captured {
        text: String::from_utf8_lossy(&buf).into_owned(),
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_escaped_newlines() {
        let text =
            "3\tmain\tpanic\tboom\n0\tworker\terror\tline one\\nline two \\\\ end\nbroken line\n";
        assert_eq!(
            parse_faults(text),
            vec![
                Fault {
                    kind: FaultKind::Panic,
                    cell_line: 3,
                    thread: "main".into(),
                    message: "boom".into()
                },
                Fault {
                    kind: FaultKind::Error,
                    cell_line: 0,
                    thread: "worker".into(),
                    message: "line one\nline two \\ end".into()
                },
            ]
        );
    }

    #[test]
    fn reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::create(dir.path().join("c")).unwrap();
        std::fs::write(dir.path().join("c/stdout"), "0123456789").unwrap();
        let got = cap.stdout(4);
        assert_eq!((got.text.as_str(), got.bytes), ("0123", 10));
        assert!(!cap.started());
        assert_eq!(cap.stderr(4).bytes, 0);
    }
}
