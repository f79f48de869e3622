//! Writing files whole or not at all: the one way aula replaces a file
//! (lessons, notebooks, grades, progress, cache entries, a context's rules).
//!
//! The text goes to a temporary file in the same folder, is flushed to
//! disk, renamed over the file, and the folder is flushed too: a reader
//! (an editor watching a lesson, another `aula` reading the cache) sees the
//! old file or the new one, never part of one, and a crash right after
//! leaves the new one. The lowest layer: it imports nothing of aula's.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

/// Replaces `path` with `bytes`, keeping the permissions of the file it
/// replaces. A new file gets what any new file gets from the user's umask
/// (0644 under the usual 0022): student copies, gradebooks, feedback and
/// rendered pages are often meant for others to read.
pub fn write_atomically(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The mode goes through open(2), so the umask applies to it.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(bytes.as_ref())?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is an entry of the folder: flushed, it survives a crash.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child process, since the umask is the whole process's.
    #[test]
    fn a_new_file_gets_its_mode_from_the_umask() {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(mask) = std::env::var_os("AULA_TEST_UMASK_CHILD") {
            let mask = u32::from_str_radix(mask.to_str().unwrap(), 8).unwrap();
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
            let path = std::env::var_os("AULA_TEST_UMASK_FILE").unwrap();
            write_atomically(Path::new(&path), "new").unwrap();
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (mask, mode) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
            let path = dir.path().join(format!("new-{mask}.txt"));
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "fs::tests::a_new_file_gets_its_mode_from_the_umask",
                ])
                .env("AULA_TEST_UMASK_CHILD", mask)
                .env("AULA_TEST_UMASK_FILE", &path)
                .status()
                .unwrap();
            assert!(status.success());
            let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(got, mode, "umask {mask}");
        }
    }

    #[test]
    fn replaces_whole_keeps_permissions_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write_atomically(&path, "one").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
