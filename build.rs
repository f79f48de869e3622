//! Records the compiler aula was built with, for `aula --version`: cells
//! are compiled by the toolchain found at run time, and a report of a
//! problem needs both.

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "an unknown rustc".to_owned());
    println!("cargo:rustc-env=AULA_BUILT_WITH={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
    println!("cargo:rerun-if-changed=build.rs");
}
