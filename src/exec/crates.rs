//! A lesson's crates (its `:dep` lines), fetched and built once per
//! toolchain and dependency set, and linked by every context that needs
//! them.
//!
//! evcxr would build the crates of a `:dep` line in each context's own
//! target folder: tokio again for every exercise half, every plain cell run
//! and every context of a grading batch, and with the network each time.
//! evcxr's `:cache` shares compiler outputs, but cargo still resolves and
//! copies every crate into each context. Instead, as with aula's runtime
//! library (`runtime_lib`), the set is built here once into a folder of its
//! own, by cargo with the profile evcxr gives cells, and cells are compiled
//! with `--extern NAME=rlib` and `-L dependency=` pointing into it. A cell's
//! crate links the rlibs statically; its child needs nothing of the folder
//! at run time, and cargo never runs again for the set: a second run needs
//! no network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::lesson::Dep;

/// Changes when the folder's layout or the way it is built does.
const LAYOUT: &str = "aula-crates-1";

/// Written last into a built folder: the crates cells may name.
const EXTERNS: &str = "externs.json";

/// One built dependency set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Built {
    /// The folder the set was built in.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Each crate a cell may name, and its library relative to `dir`.
    pub externs: Vec<(String, PathBuf)>,
}

impl Built {
    /// Where the libraries and everything they depend on are.
    pub fn deps_dir(&self) -> PathBuf {
        self.dir.join("target").join("debug").join("deps")
    }

    /// rustc's flags for a crate that uses the set.
    pub fn rustc_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (name, lib) in &self.externs {
            flags.push("--extern".to_owned());
            flags.push(format!("{name}={}", self.dir.join(lib).display()));
        }
        flags.push("-L".to_owned());
        flags.push(format!("dependency={}", self.deps_dir().display()));
        flags
    }
}

/// Why a set could not be had: cargo's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub cargo: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cargo)
    }
}

/// The sets of a run: found in, or built into, `root`, each once.
pub struct Store {
    root: PathBuf,
    opt_level: String,
    sets: Mutex<HashMap<String, Result<Arc<Built>, Failed>>>,
}

impl Store {
    pub fn new(root: PathBuf, opt_level: &str) -> Store {
        Store {
            root,
            opt_level: opt_level.to_owned(),
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the set of `deps` is at hand, so [`Store::get`] will not
    /// build (none is needed, this run has it, or an earlier run built it).
    pub fn ready(&self, deps: &[Dep]) -> bool {
        if deps.is_empty() {
            return true;
        }
        let manifest = manifest(deps, &self.opt_level);
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.contains_key(&manifest)
            || key(&manifest).is_ok_and(|k| found(&self.root.join(k)).is_some())
    }

    /// The built set of `deps`, `None` for no crates. Builds it the first
    /// time (holding the store: one cargo at a time); a failure is kept,
    /// so a run reports it once and does not try again.
    pub fn get(&self, deps: &[Dep]) -> Result<Option<Arc<Built>>, Failed> {
        if deps.is_empty() {
            return Ok(None);
        }
        let manifest = manifest(deps, &self.opt_level);
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = sets.get(&manifest) {
            return found.clone().map(Some);
        }
        let built = find_or_build(&self.root, &manifest)
            .map(Arc::new)
            .map_err(|e| Failed {
                cargo: format!("{e:#}"),
            });
        sets.insert(manifest, built.clone());
        built.map(Some)
    }
}

/// The Cargo.toml of a set: the crates in a stable order, and the profile
/// evcxr writes for cells (so what is linked was built as cells are).
fn manifest(deps: &[Dep], opt_level: &str) -> String {
    let mut lines: Vec<String> = deps.iter().map(Dep::manifest_line).collect();
    lines.sort();
    lines.dedup();
    format!(
        "[package]\nname = \"aula_crates\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
         [lib]\npath = \"lib.rs\"\n\n\
         [profile.dev]\nopt-level = {opt_level}\ndebug = false\nstrip = \"debuginfo\"\n\
         debug-assertions = true\noverflow-checks = true\npanic = \"unwind\"\n\n\
         [dependencies]\n{}\n",
        lines.join("\n")
    )
}

fn key(manifest: &str) -> Result<String> {
    let version = super::toolchain::version().context("running rustc -vV")?;
    if !version.status.success() {
        bail!("rustc -vV failed");
    }
    let mut key = Sha256::new();
    for part in [LAYOUT.as_bytes(), &version.stdout[..], manifest.as_bytes()] {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part);
    }
    Ok(hex::encode(&key.finalize()[..12]))
}

/// The set an earlier run built in `dir`, if it finished.
fn found(dir: &Path) -> Option<Built> {
    let text = std::fs::read_to_string(dir.join(EXTERNS)).ok()?;
    let mut built = serde_json::from_str::<Built>(&text).ok()?;
    built.dir = dir.to_path_buf();
    Some(built)
}

fn find_or_build(root: &Path, manifest: &str) -> Result<Built> {
    let dir = root.join(key(manifest)?);
    if let Some(built) = found(&dir) {
        return Ok(built);
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    // Built aside and renamed into place whole: another aula running at the
    // same time never sees half a set. The paths cells use are taken only
    // after the rename.
    let work = tempfile::Builder::new()
        .prefix("building-")
        .tempdir_in(root)
        .with_context(|| format!("creating a folder in {}", root.display()))?;
    std::fs::write(work.path().join("Cargo.toml"), manifest)?;
    std::fs::write(work.path().join("lib.rs"), "")?;
    let artifacts = cargo_build(work.path())?;
    let externs = externs(work.path(), &artifacts)?;
    let built = Built {
        dir: PathBuf::new(),
        externs,
    };
    std::fs::write(work.path().join(EXTERNS), serde_json::to_string(&built)?)?;
    let kept = work.keep();
    if std::fs::rename(&kept, &dir).is_err() {
        // Another run got there first; its set is the same.
        let _ = std::fs::remove_dir_all(&kept);
    }
    found(&dir).with_context(|| format!("{} is missing after the build", dir.display()))
}

/// cargo with nothing of the caller's build settings (flags, wrappers,
/// target folders meant for aula's own build).
fn cargo(dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "CARGO_TARGET_DIR",
        "CARGO_MANIFEST_DIR",
    ] {
        command.env_remove(var);
    }
    command
        .env("CARGO_TARGET_DIR", "target")
        .env("CARGO_BUILD_BUILD_DIR", "target")
        .env("RUSTFLAGS", "-Cprefer-dynamic");
    command
}

/// One `compiler-artifact` message of cargo's.
#[derive(Deserialize)]
struct Artifact {
    package_id: String,
    filenames: Vec<PathBuf>,
}

/// Builds the set; what cargo built, or cargo's error.
fn cargo_build(dir: &Path) -> Result<Vec<Artifact>> {
    let out = cargo(dir)
        .args(["build", "--message-format=json-render-diagnostics"])
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("{}", cargo_error(&String::from_utf8_lossy(&out.stderr)));
    }
    let mut artifacts = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && let Ok(a) = serde_json::from_value::<Artifact>(v)
        {
            artifacts.push(a);
        }
    }
    Ok(artifacts)
}

/// What of cargo's stderr says why: from its first error on, at most 40
/// lines (its progress lines before are noise).
fn cargo_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let from = lines
        .iter()
        .position(|l| l.trim_start().starts_with("error"))
        .unwrap_or(0);
    lines[from..]
        .iter()
        // Names aula's own folder, which means nothing to the reader.
        .filter(|l| {
            !l.trim_start()
                .starts_with("required by package `aula_crates")
        })
        .take(40)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The set's direct dependencies, by the names cells use (a renamed or
/// hyphenated crate included, as cargo's metadata resolves them), each with
/// its library: the rlib, or a proc-macro's shared object.
fn externs(dir: &Path, artifacts: &[Artifact]) -> Result<Vec<(String, PathBuf)>> {
    let out = cargo(dir)
        .args(["metadata", "--format-version", "1", "--offline"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("{}", cargo_error(&String::from_utf8_lossy(&out.stderr)));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let root = &meta["resolve"]["root"];
    let node = meta["resolve"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| &n["id"] == root))
        .context("cargo metadata names no root package")?;
    let mut externs = Vec::new();
    for dep in node["deps"].as_array().into_iter().flatten() {
        let (Some(name), Some(pkg)) = (dep["name"].as_str(), dep["pkg"].as_str()) else {
            continue;
        };
        let lib = artifacts
            .iter()
            .filter(|a| a.package_id == pkg)
            .flat_map(|a| &a.filenames)
            .find(|f| {
                let ext = f.extension().and_then(|e| e.to_str());
                ext == Some("rlib") || ext == Some("so")
            })
            .with_context(|| format!("cargo built no library of `{name}`"))?;
        let relative = lib.strip_prefix(dir).unwrap_or(lib).to_path_buf();
        externs.push((name.to_owned(), relative));
    }
    Ok(externs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, spec: &str, line: usize) -> Dep {
        Dep {
            name: name.to_owned(),
            spec: spec.to_owned(),
            line,
        }
    }

    #[test]
    fn the_manifest_does_not_depend_on_order_or_lines() {
        let a = manifest(&[dep("b", "\"1\"", 3), dep("a", "\"2\"", 9)], "0");
        let b = manifest(&[dep("a", "\"2\"", 1), dep("b", "\"1\"", 2)], "0");
        assert_eq!(a, b);
        assert!(a.contains("[dependencies]\na = \"2\"\nb = \"1\"\n"), "{a}");
        assert_ne!(
            a,
            manifest(&[dep("a", "\"2\"", 1), dep("b", "\"1\"", 2)], "1")
        );
    }

    #[test]
    fn flags_name_each_crate_and_the_folder_of_their_dependencies() {
        let built = Built {
            dir: PathBuf::from("/c/k"),
            externs: vec![(
                "tokio".to_owned(),
                PathBuf::from("target/debug/deps/libtokio-1.rlib"),
            )],
        };
        assert_eq!(
            built.rustc_flags(),
            [
                "--extern",
                "tokio=/c/k/target/debug/deps/libtokio-1.rlib",
                "-L",
                "dependency=/c/k/target/debug/deps",
            ]
        );
    }

    #[test]
    fn cargo_errors_start_at_the_first_error() {
        let e = cargo_error(
            "    Updating crates.io index\nerror: no matching package named `tokioo` found\nlocation searched: crates.io index\n",
        );
        assert!(
            e.starts_with("error: no matching package named `tokioo`"),
            "{e}"
        );
    }
}
