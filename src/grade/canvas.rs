//! `aula grade --canvas EXPORT.csv`: the batch's scores written into an
//! assignment column of a Canvas gradebook export, which Canvas imports
//! back (its "Import" button on the Grades page).
//!
//! Every row and column of the export is kept as it was, its `Points
//! Possible` row and read-only columns included: only the chosen
//! assignment's cells of matched students change. Students are matched by
//! `SIS Login ID`, equal to the submission's name or to the login a roster
//! (`student,login`) gives it. Whoever is in one list and not the other is
//! reported, never silently dropped.

use std::collections::BTreeMap;

/// What filling the export did.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    /// The export with the scores in, as CSV.
    pub csv: String,
    /// The assignment column's header.
    pub column: String,
    /// Its `Points Possible`, when the export has that row.
    pub points_possible: Option<String>,
    pub matched: usize,
    /// Students of the batch no row of the export is for.
    pub not_in_export: Vec<String>,
    /// Logins of the export's students the batch has no score for.
    pub not_in_batch: Vec<String>,
}

const LOGIN: &str = "SIS Login ID";

/// Whether a header names an assignment: Canvas writes `Name (ID)`.
fn is_assignment(header: &str) -> bool {
    let Some(open) = header.rfind(" (") else {
        return false;
    };
    let id = &header[open + 2..];
    id.strip_suffix(')')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The assignment column: the one `wanted` names (whole header, or the
/// name before ` (ID)`), else the only one there is.
fn column(headers: &[String], wanted: Option<&str>) -> Result<usize, String> {
    let assignments: Vec<usize> = (0..headers.len())
        .filter(|&i| is_assignment(&headers[i]))
        .collect();
    let listed = || {
        assignments
            .iter()
            .map(|&i| format!("`{}`", headers[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(name) => assignments
            .iter()
            .copied()
            .find(|&i| {
                let h = &headers[i];
                h == name || h.rsplit_once(" (").is_some_and(|(n, _)| n == name)
            })
            .ok_or_else(|| format!("the export has no assignment `{name}`; it has {}", listed())),
        None => match assignments.as_slice() {
            [one] => Ok(*one),
            [] => Err("the export has no assignment column (`Name (ID)`)".to_owned()),
            _ => Err(format!(
                "the export has several assignments ({}): name one with --canvas-column",
                listed()
            )),
        },
    }
}

/// Reads a roster: `student,login`, a header line first.
pub fn roster(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut map = BTreeMap::new();
    for row in reader.records() {
        let row = row.map_err(|e| format!("the roster: {e}"))?;
        let (Some(student), Some(login)) = (row.get(0), row.get(1)) else {
            return Err("the roster: each line is `student,login`".to_owned());
        };
        map.insert(student.trim().to_owned(), login.trim().to_owned());
    }
    Ok(map)
}

/// Fills the export's assignment column with `scores` (student, score).
pub fn fill(
    export: &str,
    wanted: Option<&str>,
    roster: &BTreeMap<String, String>,
    scores: &[(String, String)],
) -> Result<Filled, String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(export.as_bytes());
    for row in reader.records() {
        let row = row.map_err(|e| format!("the export: {e}"))?;
        rows.push(row.iter().map(str::to_owned).collect());
    }
    let headers = rows.first().cloned().ok_or("the export is empty")?;
    let login = headers
        .iter()
        .position(|h| h == LOGIN)
        .ok_or_else(|| format!("the export has no `{LOGIN}` column"))?;
    let col = column(&headers, wanted)?;
    let login_of = |student: &str| roster.get(student).cloned().unwrap_or(student.to_owned());
    let by_login: BTreeMap<String, &String> = scores
        .iter()
        .map(|(s, score)| (login_of(s), score))
        .collect();
    let mut points_possible = None;
    let mut seen = Vec::new();
    let mut not_in_batch = Vec::new();
    for row in rows.iter_mut().skip(1) {
        let first = row.first().map(|c| c.trim()).unwrap_or("");
        if first == "Points Possible" {
            points_possible = row.get(col).cloned();
            continue;
        }
        let Some(id) = row
            .get(login)
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
        else {
            continue;
        };
        match by_login.get(&id) {
            Some(score) => {
                if row.len() <= col {
                    row.resize(col + 1, String::new());
                }
                row[col] = (*score).clone();
                seen.push(id);
            }
            None => not_in_batch.push(id),
        }
    }
    let not_in_export = scores
        .iter()
        .map(|(s, _)| s)
        .filter(|s| !seen.contains(&login_of(s)))
        .cloned()
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        writer.write_record(row).map_err(|e| e.to_string())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    Ok(Filled {
        csv: String::from_utf8_lossy(&bytes).into_owned(),
        column: headers[col].clone(),
        points_possible,
        matched: seen.len(),
        not_in_export,
        not_in_batch,
    })
}

/// What the human report says of it.
pub fn summary(filled: &Filled, path: &std::path::Path, lang: &str) -> String {
    let mut out = rust_i18n::t!(
        "canvas.filled",
        locale = lang,
        column = filled.column,
        n = filled.matched,
        path = path.display()
    )
    .into_owned();
    if !filled.not_in_export.is_empty() {
        out.push('\n');
        out.push_str(&rust_i18n::t!(
            "canvas.not_in_export",
            locale = lang,
            students = filled.not_in_export.join(", ")
        ));
    }
    if !filled.not_in_batch.is_empty() {
        out.push('\n');
        out.push_str(&rust_i18n::t!(
            "canvas.not_in_batch",
            locale = lang,
            logins = filled.not_in_batch.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = "Student,ID,SIS User ID,SIS Login ID,Section,Aula 7 (1234),Aula 8 (1240),Current Score\n\
    \x20   Points Possible,,,,,7.00,9.00,(read only)\n\
    \"Silva, Ana\",101,s101,ana,Turma A,,,\n\
    \"Souza, Rui\",102,s102,rui.souza,Turma A,3,,\n\
    \"Lima, Eva\",103,s103,eva,Turma B,,,\n";

    fn scores() -> Vec<(String, String)> {
        vec![
            ("ana".to_owned(), "7".to_owned()),
            ("rui".to_owned(), "4.5".to_owned()),
            ("zeca".to_owned(), "1".to_owned()),
        ]
    }

    #[test]
    fn a_named_column_is_filled_and_every_other_byte_of_meaning_kept() {
        let roster = roster("student,login\nrui,rui.souza\n").unwrap();
        let f = fill(EXPORT, Some("Aula 7"), &roster, &scores()).unwrap();
        assert_eq!(f.column, "Aula 7 (1234)");
        assert_eq!(f.points_possible.as_deref(), Some("7.00"));
        assert_eq!(f.matched, 2);
        assert_eq!(f.not_in_export, ["zeca"]);
        assert_eq!(f.not_in_batch, ["eva"]);
        assert_eq!(
            f.csv,
            "Student,ID,SIS User ID,SIS Login ID,Section,Aula 7 (1234),Aula 8 (1240),Current Score\n\
             \x20   Points Possible,,,,,7.00,9.00,(read only)\n\
             \"Silva, Ana\",101,s101,ana,Turma A,7,,\n\
             \"Souza, Rui\",102,s102,rui.souza,Turma A,4.5,,\n\
             \"Lima, Eva\",103,s103,eva,Turma B,,,\n"
        );
    }

    #[test]
    fn the_column_must_be_clear() {
        let none = BTreeMap::new();
        let e = fill(EXPORT, None, &none, &scores()).unwrap_err();
        assert!(
            e.contains("several assignments (`Aula 7 (1234)`, `Aula 8 (1240)`)"),
            "{e}"
        );
        let e = fill(EXPORT, Some("Aula 9"), &none, &scores()).unwrap_err();
        assert!(e.contains("no assignment `Aula 9`"), "{e}");
        let one = "Student,ID,SIS Login ID,Aula 7 (1234)\nAna,1,ana,\n";
        let f = fill(one, None, &none, &scores()).unwrap();
        assert_eq!(
            f.csv,
            "Student,ID,SIS Login ID,Aula 7 (1234)\nAna,1,ana,7\n"
        );
        assert!(fill("Student,ID\n", None, &none, &scores()).is_err());
    }
}
