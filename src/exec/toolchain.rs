//! The toolchain cells are compiled with, as `rustc -vV` names it, and
//! what of the engine decides a verdict besides the lesson
//! ([`Environment`], which `plan` keys the cache with): the probe is a
//! process, so it lives here and plan receives its answer as data.

use std::process::{Command, Output};

use super::Options;
use crate::plan::Environment;

/// `rustc -vV` of the rustc on PATH: in aula's folder, the toolchain evcxr
/// resolves there too (rustup's proxy and `rustup which` agree).
pub fn version() -> std::io::Result<Output> {
    Command::new("rustc").arg("-vV").output()
}

/// The environment of an engine with these options; `isolated`: its code
/// runs in network namespaces of its own (`--isolate`).
pub fn environment(options: &Options, isolated: bool) -> Environment {
    Environment {
        options: format!("{options:?}"),
        isolated,
        toolchain: version()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default(),
    }
}
