//! Submissions: finding them on the command line, and taking from each only
//! its graded sides, spliced into the reference by origin. Pure code over
//! lessons, but for finding and reading the files, where symbolic links are
//! never followed and only regular files are read ([`intake`]).

use std::collections::BTreeMap;
use std::fs::FileType;
use std::path::{Path, PathBuf};

use rust_i18n::t;

use super::intake::{self, ByteSize, Unreadable};
use crate::lesson::{self, Cell, CellKind, Exercise, Lesson};

/// One student's submission, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub student: String,
    /// The lesson file; for a folder without one, or one that holds a link,
    /// the folder itself.
    pub path: PathBuf,
    /// Why it cannot be read, found while looking for it (a link).
    pub unreadable: Option<Unreadable>,
}

impl Submission {
    fn new(student: String, path: PathBuf) -> Submission {
        Submission {
            student,
            path,
            unreadable: None,
        }
    }
}

/// Why the command line names no usable set of submissions (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSubmissions {
    Missing(PathBuf),
    /// A command-line path that is a symbolic link: not followed, like any
    /// other; the instructor names the real file or folder.
    Link {
        path: PathBuf,
        target: PathBuf,
    },
    Twice {
        student: String,
        first: PathBuf,
        second: PathBuf,
    },
}

impl NotSubmissions {
    pub fn say(&self, lang: &str) -> String {
        match self {
            NotSubmissions::Missing(path) => {
                t!("grade.arg_missing", locale = lang, path = path.display())
            }
            NotSubmissions::Link { path, target } => t!(
                "grade.arg_link",
                locale = lang,
                path = path.display(),
                target = target.display()
            ),
            NotSubmissions::Twice {
                student,
                first,
                second,
            } => t!(
                "grade.arg_twice",
                locale = lang,
                student = student,
                first = first.display(),
                second = second.display()
            ),
        }
        .into_owned()
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

fn dir_name(p: &Path) -> String {
    p.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(p)
        .file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// A folder's entries with their types, links not followed, by name.
fn sorted_entries(dir: &Path) -> Vec<(PathBuf, FileType)> {
    let mut entries: Vec<(PathBuf, FileType)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
                .collect()
        })
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// An entry that stands for a lesson file: anything but a folder with a
/// lesson's name. Links and special files among them are found, so that
/// they are refused with a reason rather than passed over.
fn is_lesson_entry(p: &Path, t: FileType) -> bool {
    !t.is_dir() && lesson::has_lesson_extension(p)
}

/// A folder as one student's submission: the lesson with the reference's
/// file name, or else its only lesson file. `None`: not one submission.
/// A folder that holds a symbolic link is one that cannot be read.
fn as_submission_folder(dir: &Path, reference_name: &std::ffi::OsStr) -> Option<Submission> {
    let entries = sorted_entries(dir);
    let named = entries
        .iter()
        .find(|(p, t)| p.file_name() == Some(reference_name) && !t.is_dir());
    let lessons: Vec<&(PathBuf, FileType)> = entries
        .iter()
        .filter(|(p, t)| is_lesson_entry(p, *t))
        .collect();
    let folders = entries.iter().filter(|(_, t)| t.is_dir()).count();
    let (file, _) = match (named, lessons.as_slice(), folders) {
        (Some(named), _, _) => named,
        (None, [one], 0) => *one,
        _ => return None,
    };
    let mut sub = Submission::new(dir_name(dir), file.clone());
    if let Some(link) = first_link(dir, 0) {
        sub.path = dir.to_path_buf();
        sub.unreadable = Some(Unreadable::HoldsLink {
            folder: dir.to_path_buf(),
            target: intake::link_target(&link),
            link: link.strip_prefix(dir).unwrap_or(&link).to_path_buf(),
        });
    }
    Some(sub)
}

/// The first symbolic link in a folder or the folders in it, in name
/// order, links not followed. The depth is bounded against bind mounts
/// that loop.
fn first_link(dir: &Path, depth: usize) -> Option<PathBuf> {
    let entries = sorted_entries(dir);
    if let Some((link, _)) = entries.iter().find(|(_, t)| t.is_symlink()) {
        return Some(link.clone());
    }
    if depth >= 16 {
        return None;
    }
    entries
        .iter()
        .filter(|(_, t)| t.is_dir())
        .find_map(|(sub, _)| first_link(sub, depth + 1))
}

/// A folder of submissions' entry as a submission: a lesson file (or a
/// link, FIFO... with a lesson's name, which cannot be read), a student's
/// folder, or a link to a folder (which cannot be read either). `None`: an
/// entry that is no student's (`notes.txt`).
fn entry_submission(
    path: &Path,
    t: FileType,
    reference_name: &std::ffi::OsStr,
) -> Option<Submission> {
    if t.is_symlink() {
        // Only looked at, never read: a link to a folder is a student too.
        let student = if lesson::has_lesson_extension(path) {
            stem(path)
        } else if path.is_dir() {
            path.file_name()?.to_string_lossy().into_owned()
        } else {
            return None;
        };
        let mut sub = Submission::new(student, path.to_path_buf());
        sub.unreadable = Some(Unreadable::Link {
            path: path.to_path_buf(),
            target: intake::link_target(path),
        });
        return Some(sub);
    }
    if t.is_dir() {
        // A folder holding no usable lesson is still a student, whose
        // submission cannot be read.
        return Some(
            as_submission_folder(path, reference_name)
                .unwrap_or_else(|| Submission::new(dir_name(path), path.to_path_buf())),
        );
    }
    is_lesson_entry(path, t).then(|| Submission::new(stem(path), path.to_path_buf()))
}

/// The submissions that command-line paths name (GRADE-FORMAT.md, Inputs):
/// a lesson file (the student is its name without extension); a folder with
/// the reference's file name or exactly one lesson in it (the student is the
/// folder's name); or a folder of such files and folders. Sorted by student;
/// a name given twice is an error, since grades are keyed by it. A path
/// that is a symbolic link is refused: links are never followed, and the
/// instructor can name the real one.
pub fn discover(paths: &[PathBuf], reference: &Path) -> Result<Vec<Submission>, NotSubmissions> {
    let reference_name = reference.file_name().unwrap_or_default();
    let mut found: BTreeMap<String, Submission> = BTreeMap::new();
    let mut add = |s: Submission| -> Result<(), NotSubmissions> {
        if let Some(before) = found.get(&s.student) {
            return Err(NotSubmissions::Twice {
                student: s.student,
                first: before.path.clone(),
                second: s.path,
            });
        }
        found.insert(s.student.clone(), s);
        Ok(())
    };
    for path in paths {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Err(NotSubmissions::Missing(path.clone()));
        };
        if meta.is_symlink() {
            return Err(NotSubmissions::Link {
                path: path.clone(),
                target: intake::link_target(path),
            });
        }
        if !meta.is_dir() {
            // A FIFO or a device named here is a student whose submission
            // cannot be read: reading decides, without blocking.
            add(Submission::new(stem(path), path.clone()))?;
            continue;
        }
        if let Some(s) = as_submission_folder(path, reference_name) {
            add(s)?;
            continue;
        }
        // A folder of submissions: each lesson file and each folder in it.
        for (entry, t) in sorted_entries(path) {
            if let Some(s) = entry_submission(&entry, t, reference_name) {
                add(s)?;
            }
        }
    }
    Ok(found.into_values().collect())
}

/// A submission's cells that can stand in for the reference's graded sides,
/// by exercise ID: its server, and its visible clients in order.
#[derive(Debug, Default)]
pub struct Sides {
    servers: BTreeMap<String, Cell>,
    clients: BTreeMap<String, Vec<Cell>>,
}

/// Reads a submission's graded sides, or why it cannot be read: what was
/// found when it was discovered (a link), what [`intake::read_capped`]
/// finds (a link, a special file, a file over `max`, no such file), a file
/// that is not UTF-8, two cells claiming one side.
pub fn read(sub: &Submission, max: ByteSize) -> Result<Sides, Vec<Unreadable>> {
    if let Some(why) = &sub.unreadable {
        return Err(vec![why.clone()]);
    }
    read_file(&sub.path, max)
}

/// Reads a lesson file's graded sides (see [`read`]).
pub fn read_file(path: &Path, max: ByteSize) -> Result<Sides, Vec<Unreadable>> {
    let bytes = intake::read_capped(path, max).map_err(|why| vec![why])?;
    let text = lesson::text_of(path, bytes).map_err(|e| vec![Unreadable::Lesson(e.to_string())])?;
    // Broken attributes and the like are not the grader's concern: a cell
    // that no longer claims a side leaves that side missing.
    let (cells, _) = lesson::cells_of(path, &text);
    sides_of(path, cells)
}

/// The reference's own graded sides, as a submission of it would give.
pub fn sides_of_lesson(lesson: &Lesson) -> Result<Sides, Vec<Unreadable>> {
    sides_of(&lesson.path, lesson.cells.clone())
}

fn sides_of(path: &Path, cells: Vec<Cell>) -> Result<Sides, Vec<Unreadable>> {
    let mut sides = Sides::default();
    let mut errors = Vec::new();
    for cell in cells {
        match &cell.kind {
            CellKind::Server { exercise } => {
                if let Some(first) = sides.servers.get(exercise) {
                    errors.push(Unreadable::Lesson(format!(
                        "{}:{}: a second server cell for exercise `{exercise}` (the first is at line {})",
                        path.display(),
                        cell.line(),
                        first.line()
                    )));
                } else {
                    sides.servers.insert(exercise.clone(), cell);
                }
            }
            CellKind::Client {
                exercise,
                hidden: false,
                ..
            } => sides
                .clients
                .entry(exercise.clone())
                .or_default()
                .push(cell),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(sides)
    } else {
        Err(errors)
    }
}

/// The two checks of GRADE-FORMAT.md, spelled in grades as `as_str` does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Server,
    Client,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Server => "server",
            CheckKind::Client => "client",
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The graded sides of a reference exercise: a server cell with a solution
/// region, visible client cells with one.
pub fn graded_checks(reference: &Lesson, ex: &Exercise) -> Vec<CheckKind> {
    let mut checks = Vec::new();
    if !reference.cell(ex.server).regions.is_empty() {
        checks.push(CheckKind::Server);
    }
    if graded_clients(reference, ex).next().is_some() {
        checks.push(CheckKind::Client);
    }
    checks
}

/// Graded visible clients: (their rank among visible clients, cell index).
fn graded_clients<'a>(
    reference: &'a Lesson,
    ex: &'a Exercise,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    ex.clients
        .iter()
        .copied()
        .filter(|&i| !reference.cell(i).is_hidden())
        .enumerate()
        .filter(|&(_, i)| !reference.cell(i).regions.is_empty())
}

/// What one check runs: the reference with the student's cells spliced in,
/// the exercise as the check sees it, and which cells are the student's.
#[derive(Debug)]
pub struct Spliced {
    pub lesson: Lesson,
    pub exercise: Exercise,
    pub students_cells: Vec<usize>,
}

fn splice_cell(lesson: &mut Lesson, index: usize, from: &Cell) {
    let cell = &mut lesson.cells[index];
    cell.code = from.code.clone();
    cell.origin = from.origin.clone();
    cell.regions.clear();
}

/// The check's run (the whole exercise of the reference, the student's cells
/// in place of its graded ones), or `None` when the submission lacks a side it needs
/// (the verdict `missing`). Everything but the student's code comes from the
/// reference: plain cells, expected outputs, hidden clients, limits.
pub fn splice(
    reference: &Lesson,
    ex: &Exercise,
    sides: &Sides,
    check: CheckKind,
) -> Option<Spliced> {
    let mut lesson = reference.clone();
    lesson.conceal_hidden = true;
    match check {
        CheckKind::Server => {
            let server = sides.servers.get(&ex.id)?;
            splice_cell(&mut lesson, ex.server, server);
            Some(Spliced {
                lesson,
                exercise: ex.clone(),
                students_cells: vec![ex.server],
            })
        }
        CheckKind::Client => {
            let theirs = sides.clients.get(&ex.id)?;
            let mut students_cells = Vec::new();
            for (rank, index) in graded_clients(reference, ex) {
                splice_cell(&mut lesson, index, theirs.get(rank)?);
                students_cells.push(index);
            }
            // Hidden clients stay: the reference's server expects its whole
            // session, and its own output is part of the check.
            Some(Spliced {
                lesson,
                exercise: ex.clone(),
                students_cells,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = "# R\n\n```rust,server,exercise=echo,points=2\nlet l = 1;\n// BEGIN SOLUTION\nprintln!(\"ref\");\n// END SOLUTION\n```\n\n```rust,client,exercise=echo\n// BEGIN SOLUTION\nprintln!(\"hi\");\n// END SOLUTION\n```\n\n```output\nhi\n```\n\n```rust,client,exercise=echo,hidden\nprintln!(\"secret\");\n```\n\n```output\nsecret\n```\n";

    fn reference() -> Lesson {
        lesson::parse(Path::new("ref.md"), REFERENCE).unwrap()
    }

    fn sides(text: &str) -> Sides {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ana.md");
        std::fs::write(&path, text).unwrap();
        read_file(&path, intake::DEFAULT_MAX_SIZE).unwrap()
    }

    #[test]
    fn a_notebook_submission_is_read_and_named_by_its_cells() {
        let md = "# Ana\n\n```rust,server,exercise=echo\nprintln!(\"mine\");\n```\n";
        let nb =
            crate::lesson::notebook::from_markdown(md, &lesson::blocks_of(Path::new("a.md"), md));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ana.ipynb");
        std::fs::write(&path, nb).unwrap();
        let found = discover(std::slice::from_ref(&path), Path::new("ref.md")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].student, "ana");
        let s = read_file(&path, intake::DEFAULT_MAX_SIZE).unwrap();
        let r = reference();
        let checked = splice(&r, &r.exercises[0], &s, CheckKind::Server).unwrap();
        let cell = checked.lesson.cell(r.exercises[0].server);
        assert_eq!(cell.code, "println!(\"mine\");\n");
        assert!(
            cell.origin.to_string().ends_with("ana.ipynb:cell 2"),
            "{}",
            cell.origin
        );
    }

    #[test]
    fn both_sides_of_an_exercise_with_regions_are_graded() {
        let r = reference();
        assert_eq!(
            graded_checks(&r, &r.exercises[0]),
            vec![CheckKind::Server, CheckKind::Client]
        );
    }

    #[test]
    fn checks_splice_the_students_side_into_the_whole_reference_exercise() {
        let r = reference();
        let ex = &r.exercises[0];
        let s = sides(
            "\n\n```rust,server,exercise=echo\nprintln!(\"mine\");\n```\n\n```rust,client,exercise=echo\nprintln!(\"hi!\");\n```\n",
        );
        let server = splice(&r, ex, &s, CheckKind::Server).unwrap();
        assert_eq!(server.exercise.clients.len(), 2);
        let cell = server.lesson.cell(ex.server);
        assert_eq!(cell.code, "println!(\"mine\");\n");
        assert_eq!(cell.origin.path().file_name().unwrap(), "ana.md");
        assert_eq!(cell.line(), 3);
        assert!(server.lesson.conceal_hidden);
        let client = splice(&r, ex, &s, CheckKind::Client).unwrap();
        assert_eq!(client.exercise.clients, ex.clients);
        assert_eq!(
            client.lesson.cell(ex.clients[0]).code,
            "println!(\"hi!\");\n"
        );
        // The reference's server and expected outputs stay.
        assert_eq!(client.lesson.cell(ex.server), r.cell(ex.server));
        assert_eq!(
            client.lesson.cell(ex.clients[0]).expected,
            r.cell(ex.clients[0]).expected
        );
    }

    #[test]
    fn a_side_the_submission_lacks_is_missing() {
        let r = reference();
        let s = sides("```rust,server,exercise=echo\nprintln!(\"mine\");\n```\n");
        assert!(splice(&r, &r.exercises[0], &s, CheckKind::Client).is_none());
        assert!(splice(&r, &r.exercises[0], &s, CheckKind::Server).is_some());
    }

    #[test]
    fn two_cells_claiming_one_side_make_a_submission_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bob.md");
        std::fs::write(
            &path,
            "```rust,server,exercise=echo\n```\n\n```rust,server,exercise=echo\n```\n",
        )
        .unwrap();
        let errors = read_file(&path, intake::DEFAULT_MAX_SIZE).unwrap_err();
        assert!(
            errors[0].say("en").contains("a second server cell"),
            "{errors:?}"
        );
    }

    #[test]
    fn submissions_are_found_in_files_folders_and_folders_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("all/carla")).unwrap();
        std::fs::create_dir_all(d.join("all/davi")).unwrap();
        std::fs::create_dir_all(d.join("all/eva")).unwrap();
        std::fs::write(d.join("ana.md"), "").unwrap();
        std::fs::write(d.join("all/bia.md"), "").unwrap();
        std::fs::write(d.join("all/carla/07.md"), "").unwrap();
        std::fs::write(d.join("all/carla/notes.md"), "").unwrap();
        std::fs::write(d.join("all/davi/whatever.md"), "").unwrap();
        let found = discover(
            &[d.join("ana.md"), d.join("all")],
            Path::new("lessons/07.md"),
        )
        .unwrap();
        let names: Vec<(&str, PathBuf)> = found
            .iter()
            .map(|s| {
                (
                    s.student.as_str(),
                    s.path.strip_prefix(d).unwrap().to_path_buf(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("ana", PathBuf::from("ana.md")),
                ("bia", PathBuf::from("all/bia.md")),
                ("carla", PathBuf::from("all/carla/07.md")),
                ("davi", PathBuf::from("all/davi/whatever.md")),
                ("eva", PathBuf::from("all/eva")),
            ]
        );
        let twice = discover(&[d.join("ana.md"), d.join("ana.md")], Path::new("07.md"));
        assert!(
            twice
                .unwrap_err()
                .say("en")
                .contains("two submissions for student `ana`")
        );
    }

    #[test]
    fn links_are_students_that_cannot_be_read_and_never_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("all/bia")).unwrap();
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::fs::write(d.join("07.md"), "").unwrap();
        symlink("../07.md", d.join("all/ana.md")).unwrap();
        std::fs::write(d.join("all/bia/07.md"), "").unwrap();
        std::fs::create_dir_all(d.join("all/bia/old")).unwrap();
        symlink("../../../07.md", d.join("all/bia/old/copy.md")).unwrap();
        symlink("../real", d.join("all/caio")).unwrap();
        symlink("../07.md", d.join("all/notes.txt")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, d.join("all/davi.md"), 0o600.into()).unwrap();
        let found = discover(&[d.join("all")], Path::new("07.md")).unwrap();
        let got: Vec<(&str, Option<&Unreadable>)> = found
            .iter()
            .map(|s| (s.student.as_str(), s.unreadable.as_ref()))
            .collect();
        let link = |path: &str, target: &str| Unreadable::Link {
            path: d.join(path),
            target: PathBuf::from(target),
        };
        let holds = Unreadable::HoldsLink {
            folder: d.join("all/bia"),
            link: PathBuf::from("old/copy.md"),
            target: PathBuf::from("../../../07.md"),
        };
        assert_eq!(
            got,
            vec![
                ("ana", Some(&link("all/ana.md", "../07.md"))),
                ("bia", Some(&holds)),
                ("caio", Some(&link("all/caio", "../real"))),
                ("davi", None),
            ]
        );
        // The FIFO is found as a student, and reading it does not block.
        let fifo = read(&found[3], intake::DEFAULT_MAX_SIZE).unwrap_err();
        assert!(matches!(fifo[0], Unreadable::NotRegular { .. }), "{fifo:?}");
        assert_eq!(
            read(&found[0], intake::DEFAULT_MAX_SIZE).unwrap_err(),
            vec![link("all/ana.md", "../07.md")]
        );
        // A link named on the command line is refused, whatever it names.
        symlink("all", d.join("latest")).unwrap();
        let refused = discover(&[d.join("latest")], Path::new("07.md")).unwrap_err();
        assert_eq!(
            refused,
            NotSubmissions::Link {
                path: d.join("latest"),
                target: PathBuf::from("all")
            }
        );
        assert!(
            refused.say("pt").contains("nunca segue links"),
            "{}",
            refused.say("pt")
        );
    }
}
