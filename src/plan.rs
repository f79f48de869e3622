//! The plan of a run: lessons and a selection become units (each lesson's
//! plain cells, and each exercise), each with a stable qualified name,
//! resolved against the result cache once.
//!
//! Cache keys hold the code a unit runs and the code it sees, never where
//! it sits in the file: editing prose, or a cell the unit does not see,
//! keeps its entry. Results are stored with cells numbered by their place
//! among the cells the unit sees, and numbered back by the lesson as it is
//! now when they are read.

use std::fmt;

use crate::cache::{Cache, Key, KeyBuilder};
use crate::lesson::{CellKind, Exercise, Lesson};
use crate::outcome::{ExerciseResult, PlainResult};
use crate::partition::Partition;

/// What separates a unit's lesson from its exercise in its qualified name.
const SEPARATOR: &str = "::";

/// A unit's qualified name: its lesson's path and its exercise's ID, or
/// `(cells)` for the lesson's plain cells. Written as
/// `lessons/07-sockets.md::tcp-echo`, in reports (serde as that string)
/// and progress files, and read back from it: a path may hold `::`, an
/// exercise ID cannot (letters, digits, `-`, `_`, `.`), so the text is
/// split at its last `::`. Compared and ordered as its text, as the
/// strings it replaces were.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId {
    /// The whole text; `lesson` ends where the last `::` starts.
    text: String,
}

impl UnitId {
    /// The unit of lesson `lesson` (its path as displayed) named `id`.
    pub fn new(lesson: &str, id: &str) -> UnitId {
        UnitId {
            text: format!("{lesson}{SEPARATOR}{id}"),
        }
    }

    /// An exercise: `lessons/07-sockets.md::tcp-echo`.
    pub fn exercise(lesson: &Lesson, ex: &Exercise) -> UnitId {
        UnitId::new(&lesson.path.display().to_string(), &ex.id)
    }

    /// A lesson's plain cells, as one unit. `(cells)` cannot be an
    /// exercise ID, so it never clashes with one.
    pub fn plain(lesson: &Lesson) -> UnitId {
        UnitId::plain_of(&lesson.path.display().to_string())
    }

    /// The plain cells of the lesson at `path` (as displayed).
    pub fn plain_of(path: &str) -> UnitId {
        UnitId::new(path, "(cells)")
    }

    fn split(&self) -> (&str, &str) {
        // Every UnitId holds the separator: `new` puts it in, `from_str`
        // refuses text without it.
        self.text.rsplit_once(SEPARATOR).unwrap_or((&self.text, ""))
    }

    /// The lesson's path, as displayed.
    pub fn lesson(&self) -> &str {
        self.split().0
    }

    /// The exercise's ID, or `(cells)`.
    pub fn id(&self) -> &str {
        self.split().1
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for UnitId {
    /// Partitions hash and deal units by their text.
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for UnitId {
    type Err = String;

    /// The text a [`UnitId`] displays as; without `::` it names no unit.
    fn from_str(s: &str) -> Result<UnitId, String> {
        match s.rsplit_once(SEPARATOR) {
            Some((lesson, id)) => Ok(UnitId::new(lesson, id)),
            None => Err(format!("`{s}` is not a unit: it has no `{SEPARATOR}`")),
        }
    }
}

impl serde::Serialize for UnitId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for UnitId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UnitId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Every unit of these lessons, in plan order: each lesson's plain cells
/// (where it has any), then its selected exercises.
pub fn units(lessons: &[Lesson], selected: &dyn Fn(&Lesson, &Exercise) -> bool) -> Vec<UnitId> {
    let mut units = Vec::new();
    for l in lessons {
        if plain_cells(l).next().is_some() {
            units.push(UnitId::plain(l));
        }
        units.extend(
            l.exercises
                .iter()
                .filter(|e| selected(l, e))
                .map(|e| UnitId::exercise(l, e)),
        );
    }
    units
}

/// What a run reports: the exercises chosen (`--exercise`; none: all) and
/// this shard's units of the whole run (`--partition`).
pub struct Selection {
    partition: Option<Partition>,
    /// Every unit of the whole run, in plan order.
    pub all_units: Vec<UnitId>,
    /// This shard's units: all of them without a partition.
    pub units: Vec<UnitId>,
}

impl Selection {
    /// The selection of `exercises` and `partition` over `lessons`, and the
    /// lessons to run: with `exercises`, those holding a chosen one; with a
    /// partition, those holding one of its units (a shard runs what its
    /// units need, plain cells included, and reports only its own).
    pub fn new(
        lessons: Vec<Lesson>,
        exercises: &[String],
        partition: Option<Partition>,
    ) -> (Selection, Vec<Lesson>) {
        let chosen = |_: &Lesson, ex: &Exercise| exercises.is_empty() || exercises.contains(&ex.id);
        let lessons: Vec<Lesson> = lessons
            .into_iter()
            .filter(|l| l.exercises.iter().any(|e| chosen(l, e)) || exercises.is_empty())
            .collect();
        let all_units = units(&lessons, &chosen);
        let units = Partition::shard(partition, all_units.clone(), &all_units);
        let selection = Selection {
            partition,
            all_units,
            units,
        };
        let lessons = lessons
            .into_iter()
            .filter(|l| {
                selection.reports_plain(l) || l.exercises.iter().any(|e| selection.selected(l, e))
            })
            .collect();
        (selection, lessons)
    }

    /// Whether the run reports this exercise.
    pub fn selected(&self, lesson: &Lesson, ex: &Exercise) -> bool {
        self.units.contains(&UnitId::exercise(lesson, ex))
    }

    /// Whether the run reports this lesson's plain cells.
    pub fn reports_plain(&self, lesson: &Lesson) -> bool {
        self.partition.is_none() || self.units.contains(&UnitId::plain(lesson))
    }
}

/// What a run was given, as a hash: shards of one run agree on it.
pub fn inputs(lessons: &[Lesson], environment: &str) -> String {
    let mut key = KeyBuilder::new("inputs").field("environment", environment);
    for l in lessons {
        key = key
            .field("path", l.path.display().to_string())
            .field("text", &l.source.text);
    }
    key.finish().as_str().to_owned()
}

/// What else decides a verdict besides the lesson, as `exec` describes
/// it (`exec::toolchain::environment`): the engine's options, whether its
/// code runs isolated, and the toolchain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// The engine's options, as JSON of their fields.
    pub options: String,
    pub isolated: bool,
    /// What `rustc -vV` says; empty where it could not run.
    pub toolchain: String,
}

impl fmt::Display for Environment {
    /// As cache keys hash it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\nisolated: {}\n{}",
            self.options, self.isolated, self.toolchain
        )
    }
}

/// What an exercise runs and sees, as a hash: it changes when the
/// exercise's cells, their expected outputs, or the plain cells they see
/// change, and not when prose or other exercises do.
pub fn fingerprint(lesson: &Lesson, ex: &Exercise) -> String {
    let mut key = KeyBuilder::new("fingerprint").field("timeout", timeout_ms(ex));
    key = crate_fields(key, &lesson.crates_of(ex));
    for &i in &seen_by(lesson, ex).0 {
        let cell = lesson.cell(i);
        key = cell_fields(key, cell, kind_key(&cell.kind));
    }
    key.finish().as_str().to_owned()
}

/// An exercise's timeout in a key: whole milliseconds (lessons write
/// whole seconds).
fn timeout_ms(ex: &Exercise) -> String {
    ex.timeout.as_millis().to_string()
}

/// A cell's kind in a key, by stable names rather than how `Debug` prints
/// it: the role, its exercise, and a client's hiding and wire faults (as
/// the lesson writes them). The match names every field, so a new one
/// does not compile until it is keyed too.
fn kind_key(kind: &CellKind) -> String {
    match kind {
        CellKind::Plain => "plain".to_owned(),
        CellKind::Ignored => "ignored".to_owned(),
        CellKind::Server { exercise } => format!("server of {exercise}"),
        CellKind::Client {
            exercise,
            hidden,
            wire,
        } => {
            let wire: Vec<String> = wire.iter().map(ToString::to_string).collect();
            format!(
                "client of {exercise}, hidden {hidden}, wire {}",
                wire.join("+")
            )
        }
    }
}

/// The crates a unit links, by what `[dependencies]` says of them.
fn crate_fields(key: KeyBuilder, crates: &[crate::lesson::Dep]) -> KeyBuilder {
    crates
        .iter()
        .fold(key, |key, d| key.field("crate", d.manifest_line()))
}

/// What of a cell its results depend on; `kind` as the caller describes it.
fn cell_fields(key: KeyBuilder, cell: &crate::lesson::Cell, kind: String) -> KeyBuilder {
    key.field("kind", format!("{kind} in {}", cell.lang.as_str()))
        .field("code", &cell.code)
        .field(
            "expected",
            cell.expected.as_ref().map_or("\0none", |e| e.text.as_str()),
        )
}

/// Cells a unit sees, in order: the numbering its cached results use.
struct Seen(Vec<usize>);

impl Seen {
    fn relative(&self, cell: usize) -> usize {
        self.0.iter().position(|&c| c == cell).unwrap_or(usize::MAX)
    }

    fn absolute(&self, position: usize) -> usize {
        self.0.get(position).copied().unwrap_or(usize::MAX)
    }
}

fn plain_cells(lesson: &Lesson) -> impl Iterator<Item = usize> + '_ {
    (0..lesson.cells.len()).filter(|&i| lesson.cells[i].kind == CellKind::Plain)
}

/// The cells an exercise sees: the plain cells above its last cell, then
/// its own.
fn seen_by(lesson: &Lesson, ex: &Exercise) -> Seen {
    let last = ex.cells().map(|i| lesson.cell(i).line()).max().unwrap_or(0);
    Seen(
        lesson
            .plain_cells_above(last)
            .map(|(i, _)| i)
            .chain(ex.cells())
            .collect(),
    )
}

/// A plain cell as exercise cells replay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Replay {
    /// Index of the cell in its lesson.
    pub index: usize,
    /// Run inside `{ }`: evcxr cannot keep a variable that borrows, and
    /// such a cell still runs as a block (its variables stay its own).
    pub wrapped: bool,
}

/// Keys and cached results for one run.
pub struct Keys<'a> {
    environment: String,
    cache: Option<&'a Cache>,
}

impl<'a> Keys<'a> {
    pub fn new(environment: &Environment, cache: Option<&'a Cache>) -> Keys<'a> {
        Keys {
            environment: environment.to_string(),
            cache,
        }
    }

    /// State flows down a notebook: a plain cell's verdict depends on every
    /// plain cell above it.
    fn plain_key(&self, lesson: &Lesson, index: usize) -> Key {
        let mut key = KeyBuilder::new("plain").field("environment", &self.environment);
        for i in plain_cells(lesson).take_while(|&i| i <= index) {
            key = key.field("code", &lesson.cell(i).code);
        }
        // The `:dep` lines are out of the code: the crates the cell links.
        key = crate_fields(key, &lesson.crates_of_cell(index));
        let expected = lesson.cell(index).expected.as_ref();
        key.field("expected", expected.map_or("\0none", |e| e.text.as_str()))
            .finish()
    }

    /// `replay`: the plain cells that ran through, which the exercise's cells
    /// replay; a plain cell that timed out once and passes now changes what
    /// the exercise sees, so it changes the key.
    fn exercise_key(&self, lesson: &Lesson, ex: &Exercise, replay: &[Replay]) -> Key {
        let seen = seen_by(lesson, ex);
        let replayed: Vec<(usize, bool)> = replay
            .iter()
            .filter(|r| seen.0.contains(&r.index))
            .map(|r| (seen.relative(r.index), r.wrapped))
            .collect();
        let mut key = KeyBuilder::new("exercise")
            .field("environment", &self.environment)
            .field("timeout", timeout_ms(ex))
            .field(
                "replay",
                serde_json::to_string(&replayed).unwrap_or_default(),
            );
        key = crate_fields(key, &lesson.crates_of(ex));
        for &i in &seen.0 {
            let cell = lesson.cell(i);
            // Which plain cells each exercise cell sees is part of what it runs.
            let sees = lesson.plain_cells_above(cell.line()).count();
            key = cell_fields(key, cell, format!("{} sees {sees}", kind_key(&cell.kind)));
        }
        key.finish()
    }

    /// Every plain cell of the lesson from the cache, or `None` if any is
    /// missing.
    pub fn cached_plain(&self, lesson: &Lesson) -> Option<Vec<PlainResult>> {
        let cache = self.cache?;
        let seen = Seen(plain_cells(lesson).collect());
        seen.0
            .iter()
            .map(|&i| {
                let mut r: PlainResult = cache.get(&self.plain_key(lesson, i))?;
                r.map_cells(&|p| seen.absolute(p));
                r.result.cached = true;
                Some(r)
            })
            .collect()
    }

    pub fn store_plain(&self, lesson: &Lesson, results: &[PlainResult]) {
        let Some(cache) = self.cache else { return };
        let seen = Seen(plain_cells(lesson).collect());
        for r in results.iter().filter(|r| r.result.verdict.cacheable()) {
            let mut stored = r.clone();
            stored.map_cells(&|c| seen.relative(c));
            cache.put(&self.plain_key(lesson, r.result.cell), &stored);
        }
    }

    pub fn cached_exercise(
        &self,
        lesson: &Lesson,
        ex: &Exercise,
        replay: &[Replay],
    ) -> Option<ExerciseResult> {
        let mut result: ExerciseResult = self.cache?.get(&self.exercise_key(lesson, ex, replay))?;
        let seen = seen_by(lesson, ex);
        result.map_cells(&|p| seen.absolute(p));
        result.cached = true;
        // Not part of the key: these come from the lesson as it is now.
        result.points = ex.points;
        result.id = ex.id.clone();
        Some(result)
    }

    pub fn store_exercise(
        &self,
        lesson: &Lesson,
        ex: &Exercise,
        replay: &[Replay],
        result: &ExerciseResult,
    ) {
        let Some(cache) = self.cache else { return };
        if !result.verdict.cacheable() {
            return;
        }
        let seen = seen_by(lesson, ex);
        let mut stored = result.clone();
        stored.map_cells(&|c| seen.relative(c));
        cache.put(&self.exercise_key(lesson, ex, replay), &stored);
    }
}

/// The replay list of a lesson's plain results.
pub fn replay_of(results: &[PlainResult]) -> Vec<Replay> {
    results
        .iter()
        .filter_map(|r| {
            r.replay.map(|wrapped| Replay {
                index: r.result.cell,
                wrapped,
            })
        })
        .collect()
}

/// One lesson of the plan.
pub struct LessonPlan<'l> {
    pub lesson: &'l Lesson,
    /// The selected exercises, by index in the lesson.
    pub exercises: Vec<usize>,
    /// The plain cells' results, when the cache has them all.
    pub plain: Option<Vec<PlainResult>>,
    /// Cached results of selected exercises, by the same index; only known
    /// when `plain` is.
    pub cached: Vec<Option<ExerciseResult>>,
    /// Whether the plain cells' results are reported: not when another
    /// shard reports them (they still run, for the exercises that see them).
    pub report_plain: bool,
}

impl LessonPlan<'_> {
    pub fn has_plain_cells(&self) -> bool {
        plain_cells(self.lesson).next().is_some()
    }
}

/// The whole run, resolved against the cache.
pub struct Plan<'l> {
    pub lessons: Vec<LessonPlan<'l>>,
}

impl<'l> Plan<'l> {
    pub fn new(
        lessons: &'l [Lesson],
        selected: &dyn Fn(&Lesson, &Exercise) -> bool,
        keys: &Keys<'_>,
    ) -> Plan<'l> {
        let lessons = lessons
            .iter()
            .map(|lesson| {
                let exercises: Vec<usize> = (0..lesson.exercises.len())
                    .filter(|&i| selected(lesson, &lesson.exercises[i]))
                    .collect();
                let plain = keys.cached_plain(lesson);
                let cached = exercises
                    .iter()
                    .map(|&i| {
                        let replay = replay_of(plain.as_ref()?);
                        keys.cached_exercise(lesson, &lesson.exercises[i], &replay)
                    })
                    .collect();
                LessonPlan {
                    lesson,
                    exercises,
                    plain,
                    cached,
                    report_plain: true,
                }
            })
            .collect();
        Plan { lessons }
    }

    /// Exercises the cache could not answer (or cannot yet: their lesson's
    /// plain cells must run first).
    pub fn exercise_misses(&self) -> usize {
        self.lessons
            .iter()
            .map(|l| l.cached.iter().filter(|c| c.is_none()).count())
            .sum()
    }

    /// Whether some lesson's plain cells must run.
    pub fn plain_misses(&self) -> usize {
        self.lessons
            .iter()
            .filter(|l| l.plain.is_none() && l.has_plain_cells())
            .count()
    }

    /// Contexts the run will use: one for plain cells if any must run, and
    /// a server's and a client's for each exercise running at once.
    pub fn contexts_needed(&self, jobs: usize) -> usize {
        usize::from(self.plain_misses() > 0) + 2 * jobs.min(self.exercise_misses())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson(dep: &str) -> Lesson {
        let text = format!(
            "# L\n\n```rust\n{dep}\nfn f() {{}}\n```\n\n```rust,server,exercise=e\nprintln!(\"s\");\n```\n\n```rust,client,exercise=e\n```\n"
        );
        crate::lesson::parse(std::path::Path::new("l.md"), &text).unwrap()
    }

    #[test]
    fn an_exercise_and_a_plain_cell_change_with_the_crates_they_link() {
        let tokio1 = lesson(":dep tokio = \"1\"");
        let tokio2 = lesson(":dep tokio = \"2\"");
        let none = lesson("");
        let fp = |l: &Lesson| fingerprint(l, &l.exercises[0]);
        assert_ne!(fp(&tokio1), fp(&tokio2));
        assert_ne!(fp(&tokio1), fp(&none));
        let keys = Keys::new(&Environment::default(), None);
        assert_ne!(
            keys.plain_key(&tokio1, 0).as_str(),
            keys.plain_key(&tokio2, 0).as_str()
        );
    }

    #[test]
    fn keys_change_with_the_timeout_and_each_part_of_a_cells_kind() {
        let with = |server: &str, client: &str| {
            let text = format!(
                "```rust,server,exercise=e{server}\nserve();\n```\n\n```rust,client,exercise=e{client}\nask();\n```\n"
            );
            crate::lesson::parse(std::path::Path::new("l.md"), &text).unwrap()
        };
        let lessons = [
            with("", ""),
            with(",timeout=6", ""),
            with(",timeout=7", ""),
            with("", ",hidden"),
            with("", ",wire=split:1"),
            with("", ",wire=split:2"),
            with("", ",wire=split:1+delay:5"),
        ];
        let keys = Keys::new(&Environment::default(), None);
        let fps: Vec<String> = lessons
            .iter()
            .map(|l| fingerprint(l, &l.exercises[0]))
            .collect();
        let exs: Vec<String> = lessons
            .iter()
            .map(|l| {
                keys.exercise_key(l, &l.exercises[0], &[])
                    .as_str()
                    .to_owned()
            })
            .collect();
        for i in 0..lessons.len() {
            for j in 0..i {
                assert_ne!(fps[i], fps[j], "fingerprints {i} and {j}");
                assert_ne!(exs[i], exs[j], "keys {i} and {j}");
            }
        }
        assert_eq!(fps[0], fingerprint(&with("", ""), &lessons[0].exercises[0]));
        assert_ne!(kind_key(&CellKind::Plain), kind_key(&CellKind::Ignored));
    }

    #[test]
    fn a_unit_id_round_trips_its_text_and_splits_at_the_last_separator() {
        let l = lesson("");
        let ex = UnitId::exercise(&l, &l.exercises[0]);
        assert_eq!(ex.to_string(), "l.md::e");
        assert_eq!(UnitId::plain(&l).to_string(), "l.md::(cells)");
        // A path may hold `::` (an exercise ID cannot): as merge split
        // these strings before, at the last one.
        for (text, lesson, id) in [
            (
                "lessons/07-sockets.md::tcp-echo",
                "lessons/07-sockets.md",
                "tcp-echo",
            ),
            ("odd::dir/a::b.md::x.y", "odd::dir/a::b.md", "x.y"),
            ("a.md::(cells)", "a.md", "(cells)"),
            ("::x", "", "x"),
        ] {
            let unit: UnitId = text.parse().unwrap();
            assert_eq!((unit.lesson(), unit.id()), (lesson, id), "{text}");
            assert_eq!(unit.to_string(), text);
            assert_eq!(unit, UnitId::new(lesson, id));
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<UnitId>(&json).unwrap(), unit);
        }
        assert!("no-qualified-name".parse::<UnitId>().is_err());
        assert!(serde_json::from_str::<UnitId>("\"a.md\"").is_err());
        // Ordered as their text, as progress files list them.
        let mut units: Vec<UnitId> = ["a.md::x", "a.md-b.md::y"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        units.sort();
        assert_eq!(units[0].as_str(), "a.md-b.md::y");
    }
}
