//! aula runs Rust lessons written in Markdown, the way Jupyter runs
//! notebooks, and grades their server/client exercises.
//!
//! The data's path: [`lesson`] (file → cells and exercises) → [`exec`]
//! (contexts, ports, watchdogs) → [`compare`] (expected against actual) →
//! [`outcome`] (verdicts) → [`report`], with [`cache`] keeping verdicts of
//! unchanged code.

pub mod cache;
pub mod cli;
pub mod compare;
pub mod exec;
pub mod lesson;
pub mod outcome;
pub mod report;
