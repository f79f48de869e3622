//! `aula similar`: pairs of submissions ranked by how much of their graded
//! code they share. Evidence for a person to read, never a verdict.
//!
//! Each submission's graded cells (its servers and visible clients, as
//! grading takes them) are cut into tokens by `proc_macro2`, which drops
//! comments and layout; identifiers and literals become one token each, so
//! renaming a variable or changing a message hides nothing. Fingerprints
//! are chosen by winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003):
//! hashes of every `K` consecutive tokens, the smallest of every `W`
//! consecutive hashes kept, so any run of `W + K - 1` shared tokens is
//! found whatever surrounds it, and reordering helpers moves fingerprints
//! without losing them. Fingerprints of the code the student copy already
//! gives are dropped: every student shares those. A pair's score is the
//! Dice coefficient of its fingerprint sets, `2|A∩B| / (|A| + |B|)`.
//!
//! Pure over texts; [`run`] reads the files and writes the report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use super::intake::ByteSize;
use super::submission;
use crate::lesson::{self, Cell, CellKind, Lesson};

/// Tokens in a fingerprinted run.
const K: usize = 10;
/// Hashes in a window: a shared run of `W + K - 1` tokens is always found.
const W: usize = 6;
/// Pairs shown in full, highest first.
const SHOWN: usize = 20;

/// Rust's keywords stay themselves: they are the code's shape.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while",
];

/// A normalised token and the line (1-based, in its cell's code) it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
}

/// The normalised tokens of `code`; none where it does not tokenize (an
/// unclosed bracket): such a cell counts as empty.
fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    if let Ok(stream) = TokenStream::from_str(code) {
        flatten(stream, &mut out);
    }
    out
}

fn flatten(stream: TokenStream, out: &mut Vec<Token>) {
    for tree in stream {
        let line = tree.span().start().line;
        match tree {
            TokenTree::Ident(i) => {
                let name = i.to_string();
                let text = match KEYWORDS.contains(&name.as_str()) {
                    true => name,
                    false => "I".to_owned(),
                };
                out.push(Token { text, line });
            }
            TokenTree::Literal(_) => out.push(Token {
                text: "L".to_owned(),
                line,
            }),
            TokenTree::Punct(p) => out.push(Token {
                text: p.as_char().to_string(),
                line,
            }),
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                if !open.is_empty() {
                    out.push(Token {
                        text: open.to_owned(),
                        line,
                    });
                }
                flatten(g.stream(), out);
                if !close.is_empty() {
                    out.push(Token {
                        text: close.to_owned(),
                        line: g.span_close().start().line,
                    });
                }
            }
        }
    }
}

/// One chosen fingerprint: its hash and the lines its tokens span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print {
    hash: u64,
    first: usize,
    last: usize,
}

fn kgram_hash(tokens: &[Token]) -> u64 {
    let mut h = DefaultHasher::new();
    for t in tokens {
        t.text.hash(&mut h);
    }
    h.finish()
}

/// Winnowing: the smallest hash of each window of `W` (the rightmost on a
/// tie), each kept once.
fn winnow(tokens: &[Token]) -> Vec<Print> {
    if tokens.len() < K {
        return Vec::new();
    }
    let grams: Vec<Print> = tokens
        .windows(K)
        .map(|g| Print {
            hash: kgram_hash(g),
            first: g[0].line,
            last: g[K - 1].line,
        })
        .collect();
    let mut chosen: Vec<(usize, Print)> = Vec::new();
    for start in 0..grams.len().saturating_sub(W - 1).max(1) {
        let window = &grams[start..(start + W).min(grams.len())];
        let (offset, min) = window
            .iter()
            .enumerate()
            .rev()
            .min_by_key(|(_, p)| p.hash)
            .expect("a window is never empty");
        let at = start + offset;
        if chosen.last().is_none_or(|(i, _)| *i != at) {
            chosen.push((at, *min));
        }
    }
    chosen.into_iter().map(|(_, p)| p).collect()
}

/// Every hash of `K` tokens of `code`: what the student copy gives.
fn all_hashes(code: &str) -> BTreeSet<u64> {
    tokens(code).windows(K).map(kgram_hash).collect()
}

/// One graded side of one submission: its code and its fingerprints (the
/// given ones left out).
#[derive(Debug, Clone)]
pub struct Side {
    /// `ID server`, `ID client 1`: as grading names the check's side.
    pub name: String,
    pub code: String,
    prints: Vec<Print>,
}

/// What `aula similar` reads of one submission.
#[derive(Debug, Clone)]
pub struct Work {
    pub student: String,
    pub sides: Vec<Side>,
}

impl Work {
    fn hashes(&self) -> BTreeSet<(usize, u64)> {
        self.sides
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.prints.iter().map(move |p| (i, p.hash)))
            .collect()
    }
}

/// The reference's graded sides, by name, with the code its student copy
/// gives for each.
pub fn given(reference: &Lesson) -> Result<BTreeMap<String, BTreeSet<u64>>, String> {
    let copy = lesson::student::copy(reference);
    let (cells, _) = lesson::cells_of(&reference.path, &copy);
    let mut given = BTreeMap::new();
    for (name, cell) in graded_sides(&cells) {
        given.insert(name, all_hashes(&cell.code));
    }
    Ok(given)
}

/// Graded sides of a file's cells, by name: servers, and visible clients
/// numbered in file order within their exercise.
fn graded_sides(cells: &[Cell]) -> Vec<(String, &Cell)> {
    let mut clients: HashMap<&str, usize> = HashMap::new();
    let mut sides = Vec::new();
    for cell in cells {
        match &cell.kind {
            CellKind::Server { exercise } => sides.push((format!("{exercise} server"), cell)),
            CellKind::Client {
                exercise,
                hidden: false,
                ..
            } => {
                let n = clients.entry(exercise).or_default();
                *n += 1;
                sides.push((format!("{exercise} client {n}"), cell));
            }
            _ => {}
        }
    }
    sides
}

/// A submission's work: the sides the reference grades, fingerprinted.
pub fn work(
    student: &str,
    path: &Path,
    text: &str,
    given: &BTreeMap<String, BTreeSet<u64>>,
) -> Work {
    let (cells, _) = lesson::cells_of(path, text);
    let sides = graded_sides(&cells)
        .into_iter()
        .filter_map(|(name, cell)| {
            let gives = given.get(&name)?;
            let prints = winnow(&tokens(&cell.code))
                .into_iter()
                .filter(|p| !gives.contains(&p.hash))
                .collect();
            Some(Side {
                name,
                code: cell.code.clone(),
                prints,
            })
        })
        .collect();
    Work {
        student: student.to_owned(),
        sides,
    }
}

/// A pair of submissions and what they share.
#[derive(Debug, Clone)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    /// From 0 (nothing shared) to 1 (every fingerprint shared).
    pub score: f64,
}

/// Every pair, highest score first (then by names, so the order is stable).
pub fn rank(works: &[Work]) -> Vec<Pair> {
    let hashes: Vec<BTreeSet<(usize, u64)>> = works.iter().map(Work::hashes).collect();
    let mut pairs = Vec::new();
    for a in 0..works.len() {
        for b in a + 1..works.len() {
            let (ha, hb) = (&hashes[a], &hashes[b]);
            let total = ha.len() + hb.len();
            let shared = ha.intersection(hb).count();
            let score = if total == 0 {
                0.0
            } else {
                2.0 * shared as f64 / total as f64
            };
            pairs.push(Pair { a, b, score });
        }
    }
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| works[x.a].student.cmp(&works[y.a].student))
            .then_with(|| works[x.b].student.cmp(&works[y.b].student))
    });
    pairs
}

/// The lines of a side that hold a fingerprint the other side has too.
fn shared_lines(side: &Side, other: &Side) -> BTreeSet<usize> {
    let theirs: BTreeSet<u64> = other.prints.iter().map(|p| p.hash).collect();
    side.prints
        .iter()
        .filter(|p| theirs.contains(&p.hash))
        .flat_map(|p| p.first..=p.last)
        .collect()
}

/// One side of a pair shown: the code, shared lines marked.
struct Shown {
    name: String,
    a: Vec<(bool, String)>,
    b: Vec<(bool, String)>,
}

fn marked(side: &Side, shared: &BTreeSet<usize>) -> Vec<(bool, String)> {
    side.code
        .lines()
        .enumerate()
        .map(|(i, l)| (shared.contains(&(i + 1)), l.to_owned()))
        .collect()
}

/// The sides both submissions have that share something.
fn shown(a: &Work, b: &Work) -> Vec<Shown> {
    let mut out = Vec::new();
    for sa in &a.sides {
        let Some(sb) = b.sides.iter().find(|s| s.name == sa.name) else {
            continue;
        };
        let (la, lb) = (shared_lines(sa, sb), shared_lines(sb, sa));
        if la.is_empty() {
            continue;
        }
        out.push(Shown {
            name: sa.name.clone(),
            a: marked(sa, &la),
            b: marked(sb, &lb),
        });
    }
    out
}

/// What every report says first.
pub const DISCLAIMER: &str = "This ranks pairs by shared code. It is evidence for a person to read, \
     never a verdict: short exercises leave few ways to write them, and a pair may share code \
     for honest reasons (the lesson's own examples, a hint, working together when allowed).";

/// `similarity.csv`: `a,b,score`, highest first.
pub fn csv(works: &[Work], pairs: &[Pair]) -> String {
    let mut out = String::from("a,b,score\n");
    for p in pairs {
        out.push_str(&format!(
            "{},{},{:.3}\n",
            super::output::csv_field(&works[p.a].student),
            super::output::csv_field(&works[p.b].student),
            p.score
        ));
    }
    out
}

/// One pair as Markdown: each shared side, both codes, shared lines marked
/// with `>`.
pub fn pair_markdown(works: &[Work], pair: &Pair) -> String {
    let (a, b) = (&works[pair.a], &works[pair.b]);
    let mut out = format!(
        "# {} and {}: {:.3}\n\n{DISCLAIMER}\n\nLines marked `>` hold code the other submission has too.\n",
        a.student, b.student, pair.score
    );
    for s in shown(a, b) {
        out.push_str(&format!("\n## {}\n", s.name));
        for (who, lines) in [(&a.student, &s.a), (&b.student, &s.b)] {
            out.push_str(&format!("\n{who}:\n\n````text\n"));
            for (mark, line) in lines {
                out.push_str(if *mark { "> " } else { "  " });
                out.push_str(line);
                out.push('\n');
            }
            out.push_str("````\n");
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_column(lines: &[(bool, String)]) -> String {
    let mut out = String::from("<pre>");
    for (mark, line) in lines {
        match mark {
            true => out.push_str(&format!("<mark>{}</mark>\n", escape(line))),
            false => out.push_str(&format!("{}\n", escape(line))),
        }
    }
    out.push_str("</pre>");
    out
}

/// One self-contained page: the ranking, then the highest pairs side by
/// side.
pub fn html(works: &[Work], pairs: &[Pair]) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>aula similar</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}\
         .sides{display:grid;grid-template-columns:1fr 1fr;gap:1em}pre{background:#f6f6f6;padding:8px;overflow:auto}\
         mark{background:#ffe08a}</style></head><body><h1>Similar submissions</h1>",
    );
    out.push_str(&format!("<p><strong>{}</strong></p>", escape(DISCLAIMER)));
    out.push_str("<table><tr><th>a</th><th>b</th><th>score</th></tr>");
    for p in pairs {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td></tr>",
            escape(&works[p.a].student),
            escape(&works[p.b].student),
            p.score
        ));
    }
    out.push_str("</table>");
    for p in pairs.iter().filter(|p| p.score > 0.0).take(SHOWN) {
        let (a, b) = (&works[p.a], &works[p.b]);
        out.push_str(&format!(
            "<h2>{} and {}: {:.3}</h2>",
            escape(&a.student),
            escape(&b.student),
            p.score
        ));
        for s in shown(a, b) {
            out.push_str(&format!(
                "<h3>{}</h3><div class=\"sides\"><div><p>{}</p>{}</div><div><p>{}</p>{}</div></div>",
                escape(&s.name),
                escape(&a.student),
                html_column(&s.a),
                escape(&b.student),
                html_column(&s.b)
            ));
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// What a run of `aula similar` found, for its caller to print.
pub struct Found {
    pub works: Vec<Work>,
    pub pairs: Vec<Pair>,
    /// Submissions that could not be read, with why.
    pub unread: Vec<(String, String)>,
}

/// Reads the reference and the submissions (as grading finds them: no
/// links, capped), ranks the pairs and, given `out`, writes
/// `similarity.csv`, `similarity.html` and `pairs/A--B.md`.
pub fn run(
    reference: &Path,
    paths: &[PathBuf],
    out: Option<&Path>,
    max: ByteSize,
) -> Result<Found, String> {
    let reference_lesson = lesson::load(reference).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let given = given(&reference_lesson)?;
    let subs = submission::discover(paths, reference).map_err(|e| e.say("en"))?;
    let mut works = Vec::new();
    let mut unread = Vec::new();
    for sub in &subs {
        let read = match &sub.unreadable {
            Some(why) => Err(why.say("en")),
            None => super::intake::read_capped(&sub.path, max)
                .map_err(|why| why.say("en"))
                .and_then(|bytes| lesson::text_of(&sub.path, bytes).map_err(|e| e.to_string())),
        };
        match read {
            Ok(text) => works.push(work(&sub.student, &sub.path, &text, &given)),
            Err(why) => unread.push((sub.student.clone(), why)),
        }
    }
    let pairs = rank(&works);
    if let Some(dir) = out {
        write(dir, &works, &pairs).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(Found {
        works,
        pairs,
        unread,
    })
}

fn write(dir: &Path, works: &[Work], pairs: &[Pair]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("pairs"))?;
    crate::fs::write_atomically(&dir.join("similarity.csv"), csv(works, pairs).as_bytes())?;
    crate::fs::write_atomically(&dir.join("similarity.html"), html(works, pairs).as_bytes())?;
    for p in pairs.iter().filter(|p| p.score > 0.0).take(SHOWN) {
        // Named by the students, made safe as the feedback's files are.
        let name = super::output::file_name(&format!(
            "{}--{}.md",
            works[p.a].student, works[p.b].student
        ));
        crate::fs::write_atomically(
            &dir.join("pairs").join(name),
            pair_markdown(works, p).as_bytes(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = "# R\n\n```rust,server,exercise=eco\nuse std::io::{BufRead, BufReader, Write};\nlet listener = std::net::TcpListener::bind((HOST, PORT))?;\n// BEGIN SOLUTION\nfor s in listener.incoming() {}\n// END SOLUTION\n```\n\n```rust,client,exercise=eco\n```\n";

    fn server(body: &str) -> String {
        format!(
            "# S\n\n```rust,server,exercise=eco\nuse std::io::{{BufRead, BufReader, Write}};\nlet listener = std::net::TcpListener::bind((HOST, PORT))?;\n{body}\n```\n\n```rust,client,exercise=eco\n```\n"
        )
    }

    /// One careful solution, a copy of it with names, comments and order
    /// changed, and two written independently.
    fn works() -> Vec<Work> {
        let reference = lesson::parse(Path::new("r.md"), REFERENCE).unwrap();
        let given = given(&reference).unwrap();
        let original = "fn answer(line: &str) -> String {\n    line.trim().to_uppercase()\n}\nfn serve(mut stream: std::net::TcpStream) -> std::io::Result<()> {\n    let mut reader = BufReader::new(stream.try_clone()?);\n    let mut line = String::new();\n    while reader.read_line(&mut line)? > 0 {\n        let reply = answer(&line);\n        stream.write_all(format!(\"{reply}\\n\").as_bytes())?;\n        line.clear();\n    }\n    Ok(())\n}\nfor stream in listener.incoming() {\n    let stream = stream?;\n    std::thread::spawn(move || serve(stream));\n}";
        let copied = "// handles one client\nfn handle(mut conn: std::net::TcpStream) -> std::io::Result<()> {\n    let mut rd = BufReader::new(conn.try_clone()?);\n    let mut buf = String::new();\n    // read every line\n    while rd.read_line(&mut buf)? > 0 {\n        let out = shout(&buf);\n        conn.write_all(format!(\"{out}\\n\").as_bytes())?;\n        buf.clear();\n    }\n    Ok(())\n}\nfn shout(s: &str) -> String {\n    s.trim().to_uppercase()\n}\nfor c in listener.incoming() {\n    let c = c?;\n    std::thread::spawn(move || handle(c));\n}";
        let own1 = "let mut clients = Vec::new();\nloop {\n    let (s, _) = listener.accept()?;\n    clients.push(std::thread::spawn(move || -> std::io::Result<()> {\n        let mut w = s.try_clone()?;\n        for l in BufReader::new(s).lines() {\n            let l = l?;\n            writeln!(w, \"{}\", l.trim().to_uppercase())?;\n        }\n        Ok(())\n    }));\n}";
        let own2 = "listener.set_nonblocking(false)?;\nwhile let Ok((conn, addr)) = listener.accept() {\n    eprintln!(\"{addr}\");\n    std::thread::spawn(move || {\n        let mut out = conn.try_clone().unwrap();\n        let lines = BufReader::new(conn).lines();\n        for text in lines.map_while(Result::ok) {\n            let up: String = text.chars().flat_map(char::to_uppercase).collect();\n            if out.write_all(up.trim().as_bytes()).and_then(|_| out.write_all(b\"\\n\")).is_err() { break; }\n        }\n    });\n}";
        [
            ("ana", original),
            ("bruno", own1),
            ("caio", copied),
            ("duda", own2),
        ]
        .iter()
        .map(|(who, body)| work(who, Path::new("s.md"), &server(body), &given))
        .collect()
    }

    #[test]
    fn a_copy_with_names_comments_and_order_changed_ranks_first() {
        let works = works();
        let pairs = rank(&works);
        let names = |p: &Pair| (works[p.a].student.as_str(), works[p.b].student.as_str());
        assert_eq!(names(&pairs[0]), ("ana", "caio"), "{pairs:?}");
        assert!(pairs[0].score > 0.5, "{pairs:?}");
        for p in &pairs[1..] {
            assert!(p.score < 0.3, "{:?}: {}", names(p), p.score);
        }
    }

    #[test]
    fn code_the_student_copy_gives_is_not_evidence() {
        let reference = lesson::parse(Path::new("r.md"), REFERENCE).unwrap();
        let given = given(&reference).unwrap();
        // Two students who wrote nothing but what the copy gives.
        let empty = server("todo!();");
        let a = work("a", Path::new("a.md"), &empty, &given);
        let b = work("b", Path::new("b.md"), &empty, &given);
        assert!(a.sides.iter().all(|s| s.prints.is_empty()), "{a:?}");
        assert_eq!(rank(&[a, b])[0].score, 0.0);
    }

    #[test]
    fn reports_mark_the_shared_lines_and_say_they_are_not_a_verdict() {
        let works = works();
        let pairs = rank(&works);
        let md = pair_markdown(&works, &pairs[0]);
        assert!(md.starts_with("# ana and caio: "), "{md}");
        assert!(md.contains("never a verdict"));
        assert!(
            md.contains("> fn serve(mut stream: std::net::TcpStream)"),
            "{md}"
        );
        assert!(
            md.contains("> fn handle(mut conn: std::net::TcpStream)"),
            "{md}"
        );
        let page = html(&works, &pairs);
        assert!(page.contains("<mark>fn handle(mut conn: std::net::TcpStream) -&gt; std::io::Result&lt;()&gt; {</mark>"), "{page}");
        let table = csv(&works, &pairs);
        assert!(table.starts_with("a,b,score\nana,caio,"), "{table}");
        assert_eq!(table.lines().count(), 1 + 6);
    }
}
