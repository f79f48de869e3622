//! A course: the lessons a student works through in order, each exercise's
//! status, and where the student is. Pure state; the interactive view
//! (`watch`) and `aula list` drive it.

pub mod list;
pub mod progress;
pub mod watch;

use std::path::PathBuf;

use crate::lesson::{self, Lesson, LessonError};
use crate::outcome::ExerciseResult;
use crate::plan::{self, Keys, Plan, UnitId};
pub use progress::{Progress, Status};

/// One exercise of the course, in course order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub lesson: usize,
    pub exercise: usize,
    /// Which unit it is (`lessons/07-sockets.md::tcp-echo` as text): what
    /// its status and the current exercise go by, what `watch` asks its
    /// runner for and shows, and `list` prints.
    pub unit: UnitId,
}

pub struct Course {
    /// The paths the course was opened with.
    pub paths: Vec<PathBuf>,
    pub lessons: Vec<Lesson>,
    pub entries: Vec<Entry>,
    pub progress: Progress,
    pub progress_path: PathBuf,
}

fn entries_of(lessons: &[Lesson]) -> Vec<Entry> {
    lessons
        .iter()
        .enumerate()
        .flat_map(|(li, l)| {
            l.exercises.iter().enumerate().map(move |(ei, ex)| Entry {
                lesson: li,
                exercise: ei,
                unit: UnitId::exercise(l, ex),
            })
        })
        .collect()
}

impl Course {
    /// Opens the course: its lessons, and the progress beside them (a
    /// damaged progress file is replaced, with the reason returned).
    pub fn open(
        paths: &[PathBuf],
    ) -> Result<(Course, Option<progress::Damaged>), Vec<LessonError>> {
        let lessons = lesson::load_all(paths)?;
        let progress_path = progress::path_for(paths);
        let (progress, damaged) = progress::load(&progress_path);
        let course = Course {
            paths: paths.to_vec(),
            entries: entries_of(&lessons),
            lessons,
            progress,
            progress_path,
        };
        Ok((course, damaged))
    }

    pub fn lesson_of(&self, i: usize) -> &Lesson {
        &self.lessons[self.entries[i].lesson]
    }

    pub fn exercise_of(&self, i: usize) -> &lesson::Exercise {
        let e = &self.entries[i];
        &self.lessons[e.lesson].exercises[e.exercise]
    }

    pub fn status(&self, i: usize) -> Status {
        self.progress.status(&self.entries[i].unit)
    }

    pub fn done(&self) -> usize {
        (0..self.entries.len())
            .filter(|&i| self.status(i) == Status::Done)
            .count()
    }

    /// Fills statuses the progress file does not know from the result
    /// cache: a deleted progress file is rebuilt by what already ran.
    pub fn fill_from_cache(&mut self, keys: &Keys<'_>) {
        let plan = Plan::new(&self.lessons, &|_, _| true, keys);
        let mut found = Vec::new();
        for lp in &plan.lessons {
            for (k, cached) in lp.cached.iter().enumerate() {
                if let Some(r) = cached {
                    let ex = &lp.lesson.exercises[lp.exercises[k]];
                    found.push((UnitId::exercise(lp.lesson, ex), r.verdict.passed()));
                }
            }
        }
        for (unit, passed) in found {
            self.progress.statuses.entry(unit).or_insert(if passed {
                Status::Done
            } else {
                Status::Failing
            });
        }
    }

    /// The exercise the student is on: the one the progress names, else the
    /// first that is not done.
    pub fn current(&self) -> Option<usize> {
        let named = self
            .progress
            .current
            .as_ref()
            .and_then(|c| self.entries.iter().position(|e| &e.unit == c));
        named.or_else(|| self.next_not_done(None))
    }

    /// The first exercise after `after` (or from the start) that is not
    /// done, wrapping around; `None` when all are done.
    pub fn next_not_done(&self, after: Option<usize>) -> Option<usize> {
        let n = self.entries.len();
        let start = after.map_or(0, |a| a + 1);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.status(i) != Status::Done)
    }

    pub fn set_current(&mut self, i: usize) {
        self.progress.current = Some(self.entries[i].unit.clone());
    }

    /// Records an exercise's verdict.
    pub fn record(&mut self, lesson: &Lesson, result: &ExerciseResult) {
        let Some(ex) = lesson.exercise(&result.id) else {
            return;
        };
        let status = if result.verdict.passed() {
            Status::Done
        } else {
            Status::Failing
        };
        self.progress
            .statuses
            .insert(UnitId::exercise(lesson, ex), status);
    }

    pub fn save(&self) -> std::io::Result<()> {
        progress::save(&self.progress_path, &self.progress)
    }

    /// Reads the lessons again after a change on disk. Returns the entries
    /// whose code (or the code they see) changed, by new index, or `None`
    /// when no lesson's text changed; on errors the course stays as it was.
    pub fn reload(&mut self) -> Result<Option<Vec<usize>>, Vec<LessonError>> {
        let lessons = lesson::load_all(&self.paths)?;
        let same = lessons.len() == self.lessons.len()
            && lessons
                .iter()
                .zip(&self.lessons)
                .all(|(a, b)| a.path == b.path && a.source.text == b.source.text);
        if same {
            return Ok(None);
        }
        let before: Vec<(UnitId, String)> = self
            .entries
            .iter()
            .map(|e| {
                let l = &self.lessons[e.lesson];
                (
                    e.unit.clone(),
                    plan::fingerprint(l, &l.exercises[e.exercise]),
                )
            })
            .collect();
        let entries = entries_of(&lessons);
        let touched = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                let l = &lessons[e.lesson];
                let now = plan::fingerprint(l, &l.exercises[e.exercise]);
                !before.iter().any(|(u, f)| u == &e.unit && f == &now)
            })
            .map(|(i, _)| i)
            .collect();
        self.lessons = lessons;
        self.entries = entries;
        Ok(Some(touched))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LESSON: &str = "```rust\nfn helper() {}\n```\n\n\
```rust,server,exercise=a\nserve();\n```\n```rust,client,exercise=a\nask();\n```\n\n\
```rust,server,exercise=b\nserve();\n```\n```rust,client,exercise=b\nask();\n```\n";

    fn course(dir: &std::path::Path) -> Course {
        std::fs::write(dir.join("01-l.md"), LESSON).unwrap();
        Course::open(&[dir.to_path_buf()]).unwrap().0
    }

    #[test]
    fn the_current_exercise_is_the_first_not_done_and_next_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = course(dir.path());
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.current(), Some(0));
        let a = c.entries[0].unit.clone();
        c.progress.statuses.insert(a, Status::Done);
        assert_eq!(c.current(), Some(1));
        assert_eq!(c.next_not_done(Some(1)), Some(1));
        c.set_current(0);
        assert_eq!(c.current(), Some(0), "the progress's choice wins");
        assert_eq!(c.done(), 1);
    }

    #[test]
    fn a_reload_names_only_the_exercises_whose_code_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = course(dir.path());
        let path = dir.path().join("01-l.md");
        // Prose and exercise b's client change; a does not see b's cells.
        let edited = format!("# Title\n\n{LESSON}").replace(
            "```rust,client,exercise=b\nask();",
            "```rust,client,exercise=b\nask_more();",
        );
        std::fs::write(&path, edited).unwrap();
        assert_eq!(c.reload().unwrap(), Some(vec![1]));
        assert_eq!(c.reload().unwrap(), None, "read again, unchanged");
        // A plain cell above both touches both.
        let edited = std::fs::read_to_string(&path)
            .unwrap()
            .replace("fn helper() {}", "fn helper() { }");
        std::fs::write(&path, edited).unwrap();
        assert_eq!(c.reload().unwrap(), Some(vec![0, 1]));
        std::fs::write(&path, "```rust,serer\n```\n").unwrap();
        assert!(c.reload().is_err());
        assert_eq!(c.entries.len(), 2, "the course stays as it was");
    }
}
