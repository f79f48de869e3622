//! aula runs Rust lessons written in Markdown, the way Jupyter runs
//! notebooks, and grades their server/client exercises.
//!
//! The data's path: [`lesson`] (file → blocks, cells with origins,
//! exercises) → [`plan`] (units, cache keys) → [`exec`] (contexts, ports,
//! watchdogs, sandbox) → [`observation`] → [`judge`] (verdicts, as
//! [`outcome`]s) → [`report`]. [`run`] carries a plan out; [`cache`] keeps
//! the verdicts of unchanged code; [`fs`] writes files whole. The modules
//! are layers, drawn in README.md ("How it works") and checked by
//! `tests/layering.rs`: each imports only from the layers below its own.

pub mod bless;
pub mod cache;
pub mod cli;
pub mod compare;
pub mod course;
pub mod exec;
pub mod fs;
pub mod grade;
pub mod i18n;
pub mod judge;
pub mod lesson;
pub mod merge;
pub mod observation;
pub mod outcome;
pub mod partition;
pub mod plan;
pub mod report;
pub mod run;

rust_i18n::i18n!("locales", fallback = "en");
