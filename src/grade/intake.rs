//! How a submission's file is read, and why one cannot be (GRADE-FORMAT.md
//! 1.1, Inputs). Submissions come from students, so the file is opened the
//! one way that cannot be turned against the grader: a symbolic link is
//! never followed (it could name the reference or a classmate's file), only
//! a regular file is read (a FIFO would block the batch, a device never
//! end), and never more than `--max-submission-size`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use rust_i18n::t;

/// A size in bytes, as `--max-submission-size` takes it (`8388608`, `512K`,
/// `8M`, `1G`; the suffixes are binary: KiB, MiB, GiB) and as messages
/// show it (`8 MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// The default of `--max-submission-size`: a lesson is a few KiB, a large
/// notebook a few hundred.
pub const DEFAULT_MAX_SIZE: ByteSize = ByteSize(8 << 20);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let bad = || format!("`{s}` is not a size: write bytes, or a number with K, M or G");
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let shift = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 0,
            "K" | "KIB" => 10,
            "M" | "MIB" => 20,
            "G" | "GIB" => 30,
            _ => return Err(bad()),
        };
        match n.checked_mul(1 << shift) {
            Some(0) => Err("the size must be more than 0 bytes".to_owned()),
            Some(bytes) => Ok(ByteSize(bytes)),
            None => Err(bad()),
        }
    }
}

impl std::fmt::Display for ByteSize {
    /// In the largest binary unit that holds it whole, so a limit reads as
    /// it was given (`8 MiB`), and an odd size exactly (`8388609 bytes`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if n != 0 && n.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", n >> shift);
            }
        }
        write!(f, "{n} bytes")
    }
}

/// What a path is when it is not a regular file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    Fifo,
    Socket,
    Device,
    Unknown,
}

impl SpecialKind {
    fn of(t: std::fs::FileType) -> SpecialKind {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            SpecialKind::Fifo
        } else if t.is_socket() {
            SpecialKind::Socket
        } else if t.is_char_device() || t.is_block_device() {
            SpecialKind::Device
        } else {
            SpecialKind::Unknown
        }
    }

    fn say(self, lang: &str) -> String {
        match self {
            SpecialKind::Fifo => t!("grade.kind_fifo", locale = lang),
            SpecialKind::Socket => t!("grade.kind_socket", locale = lang),
            SpecialKind::Device => t!("grade.kind_device", locale = lang),
            SpecialKind::Unknown => t!("grade.kind_unknown", locale = lang),
        }
        .into_owned()
    }
}

/// Why a submission cannot be read (its status is then `invalid`): data
/// until it is said, in English in `errors` and in the student's language
/// in their feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The submission is a symbolic link.
    Link { path: PathBuf, target: PathBuf },
    /// The student's folder holds a symbolic link.
    HoldsLink {
        folder: PathBuf,
        link: PathBuf,
        target: PathBuf,
    },
    /// Larger than `--max-submission-size`: not read.
    TooLarge {
        path: PathBuf,
        size: u64,
        max: ByteSize,
    },
    /// A FIFO, a socket, a device: not read.
    NotRegular { path: PathBuf, kind: SpecialKind },
    /// A student's folder without a lesson file.
    NoLesson { folder: PathBuf },
    /// What reading or parsing the lesson found (no such file, not UTF-8,
    /// two cells claiming one side), as the lesson reader says it.
    Lesson(String),
}

impl Unreadable {
    pub fn say(&self, lang: &str) -> String {
        let l = lang;
        match self {
            Unreadable::Link { path, target } => t!(
                "grade.sub_link",
                locale = l,
                path = path.display(),
                target = target.display()
            ),
            Unreadable::HoldsLink {
                folder,
                link,
                target,
            } => t!(
                "grade.sub_holds_link",
                locale = l,
                folder = folder.display(),
                link = link.display(),
                target = target.display()
            ),
            Unreadable::TooLarge { path, size, max } => t!(
                "grade.sub_too_large",
                locale = l,
                path = path.display(),
                size = ByteSize(*size),
                max = max
            ),
            Unreadable::NotRegular { path, kind } => t!(
                "grade.sub_not_regular",
                locale = l,
                path = path.display(),
                kind = kind.say(l)
            ),
            Unreadable::NoLesson { folder } => {
                t!("grade.sub_no_lesson", locale = l, folder = folder.display())
            }
            Unreadable::Lesson(message) => message.into(),
        }
        .into_owned()
    }
}

/// Where a link points, as the link says it (not resolved).
pub fn link_target(link: &Path) -> PathBuf {
    std::fs::read_link(link).unwrap_or_default()
}

/// Why `path` cannot be opened as a submission, when the reason is its
/// kind: a link, a folder, a special file. Decided without opening it, since
/// opening a device can have effects of its own.
fn not_a_file(path: &Path, t: std::fs::FileType) -> Option<Unreadable> {
    if t.is_symlink() {
        Some(Unreadable::Link {
            path: path.to_path_buf(),
            target: link_target(path),
        })
    } else if t.is_dir() {
        Some(Unreadable::NoLesson {
            folder: path.to_path_buf(),
        })
    } else if !t.is_file() {
        Some(Unreadable::NotRegular {
            path: path.to_path_buf(),
            kind: SpecialKind::of(t),
        })
    } else {
        None
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> Unreadable {
    Unreadable::Lesson(format!(
        "{}: {}",
        path.display(),
        crate::lesson::describe_io_error(e)
    ))
}

/// A submission file's bytes. Its kind is looked at before it is opened,
/// and again on what was opened (a file swapped for a link or a FIFO in
/// between is caught): `O_NOFOLLOW` fails on a link, `O_NONBLOCK` keeps a
/// FIFO's open from waiting for a writer, and at most `max` + 1 bytes are
/// read, so a file that grows past its size is caught too.
pub fn read_capped(path: &Path, max: ByteSize) -> Result<Vec<u8>, Unreadable> {
    use rustix::fs::OFlags;
    let before = std::fs::symlink_metadata(path).map_err(|e| io_error(path, &e))?;
    if let Some(why) = not_a_file(path, before.file_type()) {
        return Err(why);
    }
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, rustix::fs::Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            return Err(Unreadable::Link {
                path: path.to_path_buf(),
                target: link_target(path),
            });
        }
        Err(e) => return Err(io_error(path, &e.into())),
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if let Some(why) = not_a_file(path, meta.file_type()) {
        return Err(why);
    }
    let too_large = |size: u64| Unreadable::TooLarge {
        path: path.to_path_buf(),
        size,
        max,
    };
    if meta.len() > max.0 {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max.0 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > max.0 {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bytes_or_binary_units_and_read_back_as_given() {
        let size = |s: &str| s.parse::<ByteSize>();
        assert_eq!(size("8388608"), Ok(ByteSize(8 << 20)));
        assert_eq!(size("512K"), Ok(ByteSize(512 << 10)));
        assert_eq!(size("8M"), Ok(ByteSize(8 << 20)));
        assert_eq!(size("8MiB"), Ok(ByteSize(8 << 20)));
        assert_eq!(size("1g"), Ok(ByteSize(1 << 30)));
        for bad in ["", "M", "8MB", "-1", "0", "99999999999G"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(DEFAULT_MAX_SIZE.to_string(), "8 MiB");
        assert_eq!(ByteSize(100 << 20).to_string(), "100 MiB");
        assert_eq!(ByteSize((8 << 20) + 1).to_string(), "8388609 bytes");
    }

    #[test]
    fn only_a_regular_file_within_the_size_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ana.md"), "# Ana\n").unwrap();
        assert_eq!(
            read_capped(&d.join("ana.md"), DEFAULT_MAX_SIZE).unwrap(),
            b"# Ana\n"
        );
        std::os::unix::fs::symlink("ana.md", d.join("link.md")).unwrap();
        assert_eq!(
            read_capped(&d.join("link.md"), DEFAULT_MAX_SIZE),
            Err(Unreadable::Link {
                path: d.join("link.md"),
                target: PathBuf::from("ana.md")
            })
        );
        assert_eq!(
            read_capped(&d.join("ana.md"), ByteSize(3)),
            Err(Unreadable::TooLarge {
                path: d.join("ana.md"),
                size: 6,
                max: ByteSize(3)
            })
        );
        rustix::fs::mkfifoat(rustix::fs::CWD, d.join("fifo.md"), 0o600.into()).unwrap();
        assert_eq!(
            read_capped(&d.join("fifo.md"), DEFAULT_MAX_SIZE),
            Err(Unreadable::NotRegular {
                path: d.join("fifo.md"),
                kind: SpecialKind::Fifo
            })
        );
        assert!(matches!(
            read_capped(d, DEFAULT_MAX_SIZE),
            Err(Unreadable::NoLesson { .. })
        ));
        let said = read_capped(&d.join("nobody.md"), DEFAULT_MAX_SIZE)
            .unwrap_err()
            .say("en");
        assert!(
            said.ends_with("nobody.md: no such file or folder"),
            "{said}"
        );
    }
}
