//! aula's runtime (`cell_runtime.rs`) compiled once into a Rust dylib that
//! every evcxr context links its cells against.
//!
//! evcxr writes every item of a context into each crate it compiles, so a
//! runtime given as source (`runtime::MODULE`) is compiled again with every
//! exercise half: about 0.08 s of the 0.24 s a half took here. Given as a
//! library, a cell's crate holds only the cell and a one-line shim. The
//! library must share the cells' standard library (their panic hook and
//! stdout are the runtime's), so it is a `dylib` linked to `libstd.so`, as
//! evcxr's cells are (`-C prefer-dynamic`), built by the same rustc.
//!
//! Where it cannot be built, contexts fall back to the source module.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, LazyLock};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::runtime;

/// The crate's name in cells' code (see `runtime::SHIM`).
pub const CRATE: &str = "aula_rt";

/// The library, built (or found) the first time it is forced: by
/// [`prefetch`] when a context starts, so a run that starts none, all
/// cached, builds nothing.
pub type Pending = Arc<LazyLock<Option<PathBuf>, Box<dyn FnOnce() -> Option<PathBuf> + Send>>>;

/// The library in `root`, found there (built by an earlier run of the same
/// rustc and runtime) or built there, once asked for.
pub fn pending(root: PathBuf) -> Pending {
    let build: Box<dyn FnOnce() -> Option<PathBuf> + Send> =
        Box::new(move || match find_or_build(&root) {
            Ok(lib) => Some(lib),
            Err(e) => {
                eprintln!(
                    "warning: aula's runtime library could not be built ({e:#}); \
                     cells compile it from source"
                );
                None
            }
        });
    Arc::new(LazyLock::new(build))
}

/// Builds the library on a thread of its own while a context starts (evcxr
/// takes about a second for that); the context waits for it only then.
pub fn prefetch(pending: &Pending) {
    let pending = Arc::clone(pending);
    std::thread::spawn(move || {
        LazyLock::force(&pending);
    });
}

/// Flags every cell's crate is compiled with: evcxr's own
/// (`-Cprefer-dynamic`), the library, and where to find it at run time.
/// Encoded for `CARGO_ENCODED_RUSTFLAGS` (which cargo prefers over the
/// `RUSTFLAGS` evcxr sets), so a path with spaces stays one argument.
pub fn encoded_rustflags(lib: &Path) -> String {
    let dir = lib.parent().unwrap_or(Path::new("."));
    [
        "-Cprefer-dynamic".to_owned(),
        "--extern".to_owned(),
        format!("{CRATE}={}", lib.display()),
        "-L".to_owned(),
        format!("dependency={}", dir.display()),
        format!("-Clink-arg=-Wl,-rpath,{}", dir.display()),
    ]
    .join("\x1f")
}

/// How the library is compiled; part of its key, with rustc's version and
/// the runtime's source.
const FLAGS: [&str; 12] = [
    "--edition",
    "2024",
    "--crate-type",
    "dylib",
    "--crate-name",
    CRATE,
    "-C",
    "prefer-dynamic",
    "-C",
    "opt-level=0",
    "--cap-lints",
    "allow",
];

fn find_or_build(root: &Path) -> Result<PathBuf> {
    let version = crate::exec::toolchain::version().context("running rustc -vV")?;
    if !version.status.success() {
        bail!("rustc -vV failed");
    }
    let flags = FLAGS.join(" ");
    let mut key = Sha256::new();
    for part in [
        &version.stdout[..],
        runtime::LIBRARY_SOURCE.as_bytes(),
        flags.as_bytes(),
    ] {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part);
    }
    let key = hex::encode(&key.finalize()[..12]);
    let dir = root.join(&key);
    let lib = dir.join(format!("lib{CRATE}.so"));
    if lib.is_file() {
        return Ok(lib);
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    // Built aside and renamed into place whole, so another aula running at
    // the same time never sees half a library.
    let work = tempfile::Builder::new()
        .prefix(&format!("{key}.building-"))
        .tempdir_in(root)
        .with_context(|| format!("creating a folder in {}", root.display()))?;
    let source = work.path().join(format!("{CRATE}.rs"));
    std::fs::write(&source, runtime::LIBRARY_SOURCE)?;
    let out = Command::new("rustc")
        .args(FLAGS)
        .arg("--out-dir")
        .arg(work.path())
        .arg(&source)
        .output()
        .context("running rustc")?;
    if !out.status.success() {
        bail!(
            "rustc: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("failed")
        );
    }
    let built = work.keep();
    if std::fs::rename(&built, &dir).is_err() {
        // Another run got there first; its library is the same.
        let _ = std::fs::remove_dir_all(&built);
    }
    if !lib.is_file() {
        bail!("{} is missing after the build", lib.display());
    }
    Ok(lib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_builds_once_and_is_found_again() {
        let root = tempfile::tempdir().unwrap();
        let lib = find_or_build(root.path()).unwrap();
        assert!(lib.is_file());
        let modified = std::fs::metadata(&lib).unwrap().modified().unwrap();
        assert_eq!(find_or_build(root.path()).unwrap(), lib);
        assert_eq!(
            std::fs::metadata(&lib).unwrap().modified().unwrap(),
            modified
        );
        // Nothing half-built is left beside it.
        let entries: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn flags_keep_a_path_with_spaces_in_one_argument() {
        let flags = encoded_rustflags(Path::new("/a b/k/libaula_rt.so"));
        let args: Vec<&str> = flags.split('\x1f').collect();
        assert_eq!(
            args,
            [
                "-Cprefer-dynamic",
                "--extern",
                "aula_rt=/a b/k/libaula_rt.so",
                "-L",
                "dependency=/a b/k",
                "-Clink-arg=-Wl,-rpath,/a b/k",
            ]
        );
    }
}
