#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (Ubuntu):
# the Rust toolchain with the standard library's source, Python for lessons
# with Python peer cells, and aula itself from the source shipped in the
# zip (aula/, a copy of the repository at the version the course uses).
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends curl ca-certificates build-essential python3
curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
source "$HOME/.cargo/env"
rustup component add rust-src
cargo install --locked --path /autograder/source/aula
