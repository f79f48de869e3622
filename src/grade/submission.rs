//! Submissions: finding them on the command line, and taking from each only
//! its graded sides, spliced into the reference by origin. Pure code over
//! lessons, but for reading the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lesson::{self, Cell, CellKind, Exercise, Lesson};

/// One student's submission, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub student: String,
    /// The lesson file; for a folder without one, the folder itself.
    pub path: PathBuf,
}

fn is_lesson_file(p: &Path) -> bool {
    p.is_file() && lesson::has_lesson_extension(p)
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

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

/// A folder as one student's submission: the lesson with the reference's
/// file name, or else its only lesson file. `None`: not one submission.
fn as_submission_folder(dir: &Path, reference_name: &std::ffi::OsStr) -> Option<PathBuf> {
    let named = dir.join(reference_name);
    if named.is_file() {
        return Some(named);
    }
    let entries = sorted_entries(dir);
    let lessons: Vec<&PathBuf> = entries.iter().filter(|p| is_lesson_file(p)).collect();
    let folders = entries.iter().filter(|p| p.is_dir()).count();
    match (lessons.as_slice(), folders) {
        ([one], 0) => Some((*one).clone()),
        _ => None,
    }
}

/// The submissions that command-line paths name (GRADE-FORMAT.md, Inputs):
/// a lesson file (the student is its name without extension); a folder with
/// the reference's file name or exactly one lesson in it (the student is the
/// folder's name); or a folder of such files and folders. Sorted by student;
/// a name given twice is an error, since grades are keyed by it.
pub fn discover(paths: &[PathBuf], reference: &Path) -> Result<Vec<Submission>, String> {
    let reference_name = reference.file_name().unwrap_or_default();
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut add = |student: String, path: PathBuf| -> Result<(), String> {
        if let Some(before) = found.get(&student) {
            return Err(format!(
                "two submissions for student `{student}`: {} and {}",
                before.display(),
                path.display()
            ));
        }
        found.insert(student, path);
        Ok(())
    };
    let one = |path: &Path| -> Option<Submission> {
        if path.is_file() {
            return Some(Submission {
                student: stem(path),
                path: path.to_path_buf(),
            });
        }
        as_submission_folder(path, reference_name).map(|file| Submission {
            student: dir_name(path),
            path: file,
        })
    };
    for path in paths {
        if !path.exists() {
            return Err(format!("{}: no such file or folder", path.display()));
        }
        if let Some(s) = one(path) {
            add(s.student, s.path)?;
            continue;
        }
        // A folder of submissions: each lesson file and each folder in it.
        for entry in sorted_entries(path) {
            if is_lesson_file(&entry) {
                add(stem(&entry), entry)?;
            } else if entry.is_dir() {
                // A folder holding no usable lesson is still a student, whose
                // submission cannot be read.
                let file = as_submission_folder(&entry, reference_name).unwrap_or(entry.clone());
                add(dir_name(&entry), file)?;
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(student, path)| Submission { student, path })
        .collect())
}

/// A submission's cells that can stand in for the reference's graded sides,
/// by exercise ID: its server, and its visible clients in order.
#[derive(Debug, Default)]
pub struct Sides {
    servers: BTreeMap<String, Cell>,
    clients: BTreeMap<String, Vec<Cell>>,
}

/// Reads a submission's graded sides. `Err`: it cannot be read (not UTF-8,
/// no such file, two cells claiming one side), with the reasons.
pub fn read(path: &Path) -> Result<Sides, Vec<String>> {
    if path.is_dir() {
        return Err(vec![format!(
            "{}: no lesson file in this folder",
            path.display()
        )]);
    }
    let text = lesson::read_text(path).map_err(|e| vec![e.to_string()])?;
    // Broken attributes and the like are not the grader's concern: a cell
    // that no longer claims a side leaves that side missing.
    let (cells, _) = lesson::cells_of(path, &text);
    let mut sides = Sides::default();
    let mut errors = Vec::new();
    for cell in cells {
        match &cell.kind {
            CellKind::Server { exercise } => {
                if let Some(first) = sides.servers.get(exercise) {
                    errors.push(format!(
                        "{}:{}: a second server cell for exercise `{exercise}` (the first is at line {})",
                        path.display(),
                        cell.line(),
                        first.line()
                    ));
                } else {
                    sides.servers.insert(exercise.clone(), cell);
                }
            }
            CellKind::Client {
                exercise,
                hidden: false,
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

/// The two checks of GRADE-FORMAT.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
        read(&path).unwrap()
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
        let s = read(&path).unwrap();
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
        let errors = read(&path).unwrap_err();
        assert!(errors[0].contains("a second server cell"), "{errors:?}");
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
                .contains("two submissions for student `ana`")
        );
    }
}
