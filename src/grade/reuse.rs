//! Regrades that run only what changed: each check's result goes into the
//! results log with a key of everything it depends on, and a batch given
//! an earlier gradebook (`--compare OLD_DIR`) takes a check's result from
//! that log when its key is there, instead of running it again.
//!
//! A check's key holds what the result cache's exercise keys hold (the
//! cells it runs, their expected outputs, the plain cells they see, its
//! crates and time limit: `plan::fingerprint`), and what only grading
//! adds: the check's kind, where each of its cells stands (messages name
//! files and lines), the reference's plain cells that ran through, the
//! language of the feedback, the batch's options and the toolchain. A
//! reference fixed in one exercise leaves the other exercises' keys as
//! they were; a student who changed nothing keeps every key whose
//! reference part did not change.
//!
//! What depends on the machine's load (a timeout, a crash, a server not
//! listening) is never reused, as the result cache never keeps it; neither
//! is a check on which aula itself failed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::submission::{CheckKind, Spliced};
use super::{CheckGrade, CheckVerdict, Graded, Local};
use crate::cache::KeyBuilder;
use crate::plan::Replay;

/// A check's result as the results log keeps it for later batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptCheck {
    pub key: String,
    pub grade: CheckGrade,
    pub local: Local,
}

impl KeptCheck {
    /// Whether a later batch may take this result instead of running the
    /// check: its verdict does not depend on the machine's load.
    pub fn reusable(grade: &CheckGrade) -> bool {
        matches!(grade.verdict, CheckVerdict::Ran(v) if v.cacheable())
    }
}

/// The results a batch may reuse, and how many it did.
#[derive(Debug, Default)]
pub struct Reuse {
    /// The batch's options and toolchain, as keys hold them.
    environment: String,
    previous: HashMap<String, KeptCheck>,
    reused: AtomicUsize,
    ran: AtomicUsize,
}

impl Reuse {
    /// Nothing to reuse; keys still made, for the log.
    pub fn new(environment: String) -> Reuse {
        Reuse {
            environment,
            ..Reuse::default()
        }
    }

    /// With the checks kept in the results log of `old_dir`. A missing or
    /// unreadable log reuses nothing (it is said so), never fails the batch.
    pub fn from_log(environment: String, old_dir: &Path) -> (Reuse, Option<String>) {
        let path = old_dir.join(super::output::LOG);
        let mut reuse = Reuse::new(environment);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => return (reuse, Some(format!("{}: {e}", path.display()))),
        };
        // The first line is the log's header; the rest one student each.
        for line in text.lines().skip(1) {
            let Ok(graded) = serde_json::from_str::<Graded>(line) else {
                continue;
            };
            for kept in graded.kept {
                reuse.previous.insert(kept.key.clone(), kept);
            }
        }
        (reuse, None)
    }

    /// The key of `check` run as `spliced`, with `replay` the reference's
    /// plain cells that ran through, feedback in `lang`.
    pub fn key(
        &self,
        spliced: &Spliced,
        check: CheckKind,
        replay: &[Replay],
        lang: &str,
    ) -> String {
        let (lesson, ex) = (&spliced.lesson, &spliced.exercise);
        let mut key = KeyBuilder::new("check")
            .field("environment", &self.environment)
            .field("lang", lang)
            .field("check", check.as_str())
            .field("exercise", &ex.id)
            .field("runs", crate::plan::fingerprint(lesson, ex))
            .field("replay", serde_json::to_string(replay).unwrap_or_default());
        for i in ex.cells() {
            let origin = &lesson.cell(i).origin;
            key = key.field("at", format!("{}:{}", origin.path().display(), origin.line));
        }
        key.finish().as_str().to_owned()
    }

    /// The kept result of `key`, counted as reused.
    pub fn take(&self, key: &str) -> Option<KeptCheck> {
        let kept = self
            .previous
            .get(key)
            .filter(|k| KeptCheck::reusable(&k.grade))?;
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(kept.clone())
    }

    /// Counts a check that ran.
    pub fn ran(&self) {
        self.ran.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a log was given to reuse from.
    pub fn had_previous(&self) -> bool {
        !self.previous.is_empty()
    }

    /// (reused, ran) so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.reused.load(Ordering::Relaxed),
            self.ran.load(Ordering::Relaxed),
        )
    }
}
