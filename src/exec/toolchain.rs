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
        options: options_key(options),
        isolated,
        toolchain: version()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default(),
    }
}

/// The options as cache keys hash them: their fields as JSON, by name, so
/// the key follows the fields and not how `Debug` prints them. Options
/// hold numbers and strings only, which cannot fail to serialize.
fn options_key(options: &Options) -> String {
    serde_json::to_string(options).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exec::sandbox::Limits;

    fn options() -> Options {
        Options {
            output_cap: 1 << 20,
            grace: Duration::from_secs(1),
            cell_timeout: Duration::from_secs(10),
            compile_limit: Duration::from_secs(300),
            host: "127.0.0.1".into(),
            limits: Limits::default(),
            opt_level: "0".into(),
            trace: false,
        }
    }

    #[test]
    fn the_options_key_changes_with_every_field() {
        let base = options_key(&options());
        let changes: [fn(&mut Options); 10] = [
            |o| o.output_cap += 1,
            |o| o.grace += Duration::from_millis(1),
            |o| o.cell_timeout += Duration::from_millis(1),
            |o| o.compile_limit += Duration::from_millis(1),
            |o| o.host = "::1".into(),
            |o| o.limits.address_space = None,
            |o| o.limits.file_size = Some(1),
            |o| o.limits.processes = Some(1),
            |o| o.opt_level = "2".into(),
            |o| o.trace = true,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut o = options();
            change(&mut o);
            assert_ne!(options_key(&o), base, "change {i}");
        }
    }
}
