//! The folder a wrapped exercise cell writes into (see `runtime::files`), read
//! from the host side.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use rustix::fs::{self, Mode, OFlags};

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
///
/// The cell's code can write in this folder, and when grading, the host
/// reading it is the grader: so the host never opens a path in it after
/// the cell started. It makes the folder and the files it reads before the
/// cell runs, keeps them open, and reads through those descriptors: a
/// capture the cell swapped for a link (to `/proc/self/environ`,
/// `/dev/zero`), a FIFO or another file is not what the host reads; the
/// cell's own output, in the file it was given, is.
pub struct Capture {
    dir: PathBuf,
    /// The folder as made: files are made and looked at relative to it,
    /// never through a path that could lead elsewhere.
    folder: Arc<OwnedFd>,
    stdout: File,
    stderr: File,
    faults: File,
    replay_faults: File,
}

impl Drop for Capture {
    fn drop(&mut self) {
        // `remove_dir_all` removes a link, never what it points at.
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

/// The most of a `faults` file that is read: a cell that floods it gets
/// its first faults heard, not the host's memory filled.
const FAULTS_CAP: usize = 256 * 1024;

impl Capture {
    /// Makes `dir` anew (whatever stood at its name is removed) with the
    /// files the host will read, empty.
    pub fn create(dir: PathBuf) -> std::io::Result<Capture> {
        Capture::create_for(dir, None)
    }

    /// Like [`Capture::create`], with the folder and its files given to
    /// `owner` (uid, gid): the unprivileged user a cell runs as must write
    /// them.
    pub fn create_for(dir: PathBuf, owner: Option<(u32, u32)>) -> std::io::Result<Capture> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir)?,
            Ok(_) => std::fs::remove_file(&dir)?,
            Err(_) => {}
        }
        std::fs::create_dir(&dir)?;
        let folder = Arc::new(fs::open(
            &dir,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        let file = |at: &OwnedFd, name: &str| -> std::io::Result<File> {
            let flags = OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::RDWR;
            let fd = fs::openat(
                at,
                name,
                flags | OFlags::CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?;
            Ok(File::from(fd))
        };
        fs::mkdirat(&folder, files::REPLAY, Mode::from_bits_truncate(0o755))?;
        let replay = fs::openat(
            &folder,
            files::REPLAY,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let capture = Capture {
            stdout: file(&folder, files::STDOUT)?,
            stderr: file(&folder, files::STDERR)?,
            faults: file(&folder, files::FAULTS)?,
            replay_faults: file(&replay, files::FAULTS)?,
            folder,
            dir,
        };
        if let Some((uid, gid)) = owner {
            let (uid, gid) = (
                Some(rustix::process::Uid::from_raw(uid)),
                Some(rustix::process::Gid::from_raw(gid)),
            );
            fs::fchown(&*capture.folder, uid, gid)?;
            fs::fchown(&replay, uid, gid)?;
            for f in [
                &capture.stdout,
                &capture.stderr,
                &capture.faults,
                &capture.replay_faults,
            ] {
                fs::fchown(f, uid, gid)?;
            }
        }
        Ok(capture)
    }

    /// The folder as the cell's code names it.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    pub fn started(&self) -> bool {
        present(&self.folder, files::STARTED)
    }

    /// Whether the cell has started, for a watchdog's thread.
    pub fn started_probe(&self) -> impl Fn() -> bool + Send + 'static {
        let folder = Arc::clone(&self.folder);
        move || present(&folder, files::STARTED)
    }

    /// Whether a gated cell is compiled and waiting at the gate.
    pub fn waiting(&self) -> bool {
        present(&self.folder, files::WAITING)
    }

    pub fn finished(&self) -> bool {
        present(&self.folder, files::FINISHED)
    }

    /// Lets a gated client run. The gate is made, never opened: a link or
    /// anything else the cell put at its name is left as it is (the gate
    /// counts as open then, which only the cell's own run can feel).
    pub fn open_gate(&self) {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY;
        let _ = fs::openat(
            &self.folder,
            files::GATE,
            flags | OFlags::CLOEXEC,
            Mode::from_bits_truncate(0o644),
        );
    }

    pub fn stdout_bytes(&self) -> u64 {
        self.stdout.metadata().map_or(0, |m| m.len())
    }

    /// Whether the cell's output has grown past `cap`, for a watchdog's
    /// thread.
    pub fn stdout_over(&self, cap: u64) -> std::io::Result<impl Fn() -> bool + Send + 'static> {
        let file = self.stdout.try_clone()?;
        Ok(move || file.metadata().is_ok_and(|m| m.len() > cap))
    }

    pub fn stdout(&self, cap: usize) -> Captured {
        read_capped(&self.stdout, cap)
    }

    pub fn stderr(&self, cap: usize) -> Captured {
        read_capped(&self.stderr, cap)
    }

    pub fn faults(&self) -> Vec<Fault> {
        parse_faults(&read_capped(&self.faults, FAULTS_CAP).text)
    }

    /// Panics of the plain cells replayed before an exercise cell.
    pub fn replay_faults(&self) -> Vec<Fault> {
        parse_faults(&read_capped(&self.replay_faults, FAULTS_CAP).text)
    }
}

/// Whether `name` stands in `folder`, as whatever it is: looked at, never
/// followed or opened.
fn present(folder: &OwnedFd, name: &str) -> bool {
    fs::statat(folder, name, fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// Reads at most `cap` bytes from the start, so a flooded file never fills
/// the host's memory.
fn read_capped(file: &File, cap: usize) -> Captured {
    use std::os::unix::fs::FileExt as _;
    let bytes = file.metadata().map_or(0, |m| m.len());
    let mut buf = vec![0; cap.min(usize::try_from(bytes).unwrap_or(usize::MAX))];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.truncate(got);
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

    #[test]
    fn captures_swapped_by_the_cell_are_not_what_the_host_reads() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "GRADER_SECRET").unwrap();
        let cap = Capture::create(dir.path().join("c")).unwrap();
        let c = dir.path().join("c");
        // What a hostile cell can do to its own folder once it runs.
        std::fs::write(c.join("stdout"), "mine").unwrap();
        std::fs::remove_file(c.join("stdout")).unwrap();
        std::os::unix::fs::symlink(&secret, c.join("stdout")).unwrap();
        std::fs::remove_file(c.join("faults")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", c.join("faults")).unwrap();
        std::fs::remove_file(c.join("stderr")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            c.join("stderr"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&planted, c.join("go")).unwrap();

        // The file the cell was given, as the cell left it: "mine".
        assert_eq!(cap.stdout(64).text, "mine");
        assert!(!cap.stdout(64).text.contains("GRADER_SECRET"));
        assert!(cap.faults().is_empty());
        assert_eq!(cap.stderr(64).bytes, 0);
        cap.open_gate();
        assert!(!planted.exists(), "the gate followed a link");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "GRADER_SECRET");
    }
}
