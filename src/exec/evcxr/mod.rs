//! evcxr contexts and the code aula runs inside them: a context and its
//! child process (`kernel`), the warm pool of them (`pool`), plain cells run
//! in order (`plain`), the code handed to evcxr and the way back to the
//! cells' lines (`source`, `shape`), how much of rust-analyzer each context
//! loads (`analysis`), and the cells' runtime: its source (`runtime`,
//! `cell_runtime.rs`), its dylib (`runtime_lib`) and the captures it writes,
//! read from the host side (`capture`).

pub mod analysis;
pub mod capture;
pub mod kernel;
pub(super) mod plain;
pub(super) mod pool;
pub mod runtime;
pub mod runtime_lib;
pub(super) mod shape;
pub mod source;
