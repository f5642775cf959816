//! The shape of the code (issue 27): no function in src/ is over 150 lines but the per-version
//! data tables, and none of the text renderer's parts over 80. Functions are found with a
//! simple scanner: a line that declares a `fn` with a body, to the brace that closes it, with
//! strings, character literals and comments left out of the count of braces.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

use std::path::{Path, PathBuf};

/// Longest function allowed in src/.
const MAX_LINES: usize = 150;
/// Longest part of the text renderer.
const MAX_TEXT_PART: usize = 80;
/// Per-version data tables: one arm per CPython version, nothing to split.
const TABLES: &[(&str, &str)] = &[("src/python/layout.rs", "for_version")];

/// A function: its file, name, first line (1-based) and length in lines.
#[derive(Debug)]
struct Function {
    file: String,
    name: String,
    line: usize,
    lines: usize,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src` with string and character literals and comments blanked (newlines kept).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |from: usize, to: usize, out: &mut String| out.extend(src[from..to].chars().filter(|&c| c == '\n'));
    while i < b.len() {
        let rest = &src[i..];
        let after_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            blank(i, i + end, &mut out);
            i += end;
        } else if let Some(hashes) = raw_string_start(rest).filter(|_| !after_ident) {
            let open = rest.find('"').unwrap() + 1;
            let close = format!("\"{}", "#".repeat(hashes));
            let end = rest[open..].find(&close).map_or(rest.len(), |e| open + e + close.len());
            blank(i, i + end, &mut out);
            i += end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(i, (j + 1).min(b.len()), &mut out);
            i = j + 1;
        } else if let Some(len) = char_literal(rest) {
            i += len;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`: the number of hashes of a raw string starting here.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s);
    let s = s.strip_prefix('r')?;
    let hashes = s.len() - s.trim_start_matches('#').len();
    s[hashes..].starts_with('"').then_some(hashes)
}

/// The length of a character literal starting here (`'a'`, `'\n'`, `'\u{9b}'`), or None for a
/// lifetime.
fn char_literal(s: &str) -> Option<usize> {
    let mut it = s.char_indices();
    if it.next()?.1 != '\'' {
        return None;
    }
    let (_, c) = it.next()?;
    if c == '\\' {
        let end = s[2..].find('\'')?;
        return (end <= 10).then_some(2 + end + 1);
    }
    let (j, q) = it.next()?;
    (q == '\'').then_some(j + 1)
}

/// The name of the function a line declares, if it does.
fn declared_fn(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w == "fn" {
            let name = words.next()?;
            let end = name.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(name.len());
            return Some(&name[..end]).filter(|n| !n.is_empty());
        }
        let modifier = w.starts_with("pub") || matches!(w, "const" | "async" | "unsafe" | "extern" | "\"C\"");
        if !modifier {
            return None;
        }
    }
    None
}

fn functions(path: &Path, root: &Path) -> Vec<Function> {
    let code = code_only(&std::fs::read_to_string(path).unwrap());
    let lines: Vec<&str> = code.lines().collect();
    let file = path.strip_prefix(root).unwrap().display().to_string();
    let mut out = Vec::new();
    for (k, l) in lines.iter().enumerate() {
        let Some(name) = declared_fn(l) else { continue };
        let mut depth = 0i64;
        let mut end = None;
        'scan: for (j, l) in lines.iter().enumerate().skip(k) {
            for c in l.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    // A declaration without a body (a trait's).
                    ';' if depth == 0 => break 'scan,
                    _ => {}
                }
                if depth == 0 && c == '}' {
                    end = Some(j);
                    break 'scan;
                }
            }
        }
        if let Some(end) = end {
            out.push(Function { file: file.clone(), name: name.to_string(), line: k + 1, lines: end - k + 1 });
        }
    }
    out
}

fn all_functions() -> Vec<Function> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    files.iter().flat_map(|f| functions(f, root)).collect()
}

#[test]
fn no_function_is_over_150_lines() {
    let all = all_functions();
    assert!(all.len() > 500, "the scanner found only {} functions", all.len());
    let long: Vec<&Function> =
        all.iter().filter(|f| f.lines > MAX_LINES && !TABLES.contains(&(f.file.as_str(), f.name.as_str()))).collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
    // The exemptions are still there and still long (else they go from the list).
    for (file, name) in TABLES {
        assert!(all.iter().any(|f| f.file == *file && f.name == *name && f.lines > MAX_LINES), "{file}: {name}");
    }
}

#[test]
fn the_text_renderers_parts_are_short() {
    let long: Vec<Function> = all_functions()
        .into_iter()
        .filter(|f| f.file.starts_with("src/report/render/text/") && f.lines > MAX_TEXT_PART)
        .collect();
    assert!(long.is_empty(), "over {MAX_TEXT_PART} lines: {long:#?}");
}

#[test]
fn the_scanner_counts_what_it_should() {
    let src = "fn a() {\n    let s = \"}\";\n    let c = '}';\n    // }\n    let r = r#\"}\"#;\n}\nfn b<'a>(x: &'a str) -> &'a str {\n    x\n}\ntrait T {\n    fn c(&self);\n}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.rs");
    std::fs::write(&path, src).unwrap();
    let f = functions(&path, dir.path());
    let got: Vec<(&str, usize, usize)> = f.iter().map(|f| (f.name.as_str(), f.line, f.lines)).collect();
    assert_eq!(got, vec![("a", 1, 6), ("b", 7, 3)]);
}
