//! What a Docker build stage sees, without a Docker engine: the Dockerfile's stages and
//! instructions, the ignore file's patterns as Docker applies them, and the files a stage's
//! COPY lines put into its file system, assembled into a folder (tests/packaging.rs builds the
//! example's wheel there, as its build stage would).

use std::path::{Path, PathBuf};

/// One instruction: its keyword (upper case) and the rest of its line(s).
#[derive(Debug, Clone)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

/// A build stage: `FROM <from> [AS <name>]` and what follows it.
#[derive(Debug, Clone)]
pub struct Stage {
    pub from: String,
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// A Dockerfile: the ARGs before the first FROM (with their defaults) and the stages.
#[derive(Debug)]
pub struct Dockerfile {
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let mut lines = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with('#') && current.is_empty() || trimmed.is_empty() && current.is_empty() {
                continue;
            }
            if trimmed.starts_with('#') {
                continue; // a comment inside a continued instruction
            }
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    current.push_str(part);
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    lines.push(std::mem::take(&mut current));
                }
            }
        }
        let mut file = Dockerfile { global_args: Vec::new(), stages: Vec::new() };
        for line in lines {
            let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let (keyword, args) = (keyword.to_ascii_uppercase(), args.trim().to_string());
            if keyword == "FROM" {
                let words: Vec<&str> = args.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                    _ => None,
                };
                file.stages.push(Stage { from: words[0].to_string(), name, instructions: Vec::new() });
            } else if let Some(stage) = file.stages.last_mut() {
                stage.instructions.push(Instruction { keyword, args });
            } else if keyword == "ARG" {
                let (name, default) = match args.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (args.clone(), None),
                };
                file.global_args.push((name, default));
            }
        }
        file
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name.as_deref() == Some(name))
    }

    pub fn global_default(&self, arg: &str) -> Option<&str> {
        self.global_args.iter().find(|(n, _)| n == arg).and_then(|(_, d)| d.as_deref())
    }
}

impl Stage {
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions.iter().filter(move |i| i.keyword == keyword).map(|i| i.args.as_str())
    }
}

/// One line of a .dockerignore: a pattern, or an exception (`!pattern`).
#[derive(Debug)]
struct Pattern {
    segments: Vec<String>,
    exception: bool,
}

/// A .dockerignore, applied as Docker does: the last pattern matching a path or one of its
/// parent folders decides; `*` and `?` stay within one path segment, `**` spans any number.
#[derive(Debug)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (exception, p) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let segments = p.trim_matches('/').split('/').filter(|s| !s.is_empty() && *s != ".").map(String::from);
                Pattern { segments: segments.collect(), exception }
            })
            .collect();
        Ignore { patterns }
    }

    /// Whether the file at `rel` (relative to the context, `/`-separated) is sent.
    pub fn includes(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').collect();
        let mut included = true;
        for p in &self.patterns {
            if (1..=parts.len()).any(|n| matches(&p.segments, &parts[..n])) {
                included = p.exception;
            }
        }
        included
    }
}

fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => (0..=path.len()).any(|skip| matches(rest, &path[skip..])),
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(seg, tail)| segment_matches(first.as_bytes(), seg.as_bytes()) && matches(rest, tail)),
    }
}

/// `*` and `?` within one segment (no character classes: the example's files have none).
fn segment_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| segment_matches(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && segment_matches(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && segment_matches(rest, &name[1..]),
    }
}

/// The context's files (relative paths) that `source` of a COPY line names, after `ignore`:
/// a file, every file under a folder, or the files a `*` in the last segment matches.
pub fn copy_sources(context: &Path, source: &str, ignore: &Ignore) -> Vec<String> {
    let source = source.trim_matches('/');
    let (dir, last) = source.rsplit_once('/').unwrap_or(("", source));
    let named: Vec<String> = if last.contains(['*', '?']) {
        let mut names: Vec<String> = std::fs::read_dir(context.join(dir))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.retain(|n| segment_matches(last.as_bytes(), n.as_bytes()));
        names.into_iter().map(|n| if dir.is_empty() { n } else { format!("{dir}/{n}") }).collect()
    } else {
        vec![source.to_string()]
    };
    let mut files = Vec::new();
    for rel in named {
        walk(context, &rel, &mut files);
    }
    files.retain(|f| ignore.includes(f));
    files.sort();
    files
}

fn walk(context: &Path, rel: &str, out: &mut Vec<String>) {
    let path = context.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => {
            for e in std::fs::read_dir(&path).unwrap().flatten() {
                walk(context, &format!("{rel}/{}", e.file_name().to_string_lossy()), out);
            }
        }
        Ok(_) => out.push(rel.to_string()),
        Err(_) => {}
    }
}

/// Where COPY puts `file` (one of `copy_sources(source)`) for destination `dest` in WORKDIR
/// `workdir`: a folder source's contents go under `dest`, a file into `dest/` or at `dest`.
pub fn copy_destination(workdir: &str, source: &str, dest: &str, file: &str) -> String {
    let dest =
        if dest.starts_with('/') { dest.to_string() } else { format!("{}/{dest}", workdir.trim_end_matches('/')) };
    let source = source.trim_matches('/');
    let into_dir = dest.ends_with('/') || source.contains(['*', '?']);
    let dest = dest.trim_end_matches('/').replace("/./", "/");
    let dest = dest.strip_suffix("/.").unwrap_or(&dest).to_string();
    if file == source && !into_dir {
        return dest;
    }
    let below = file.strip_prefix(source).and_then(|r| r.strip_prefix('/'));
    match below {
        Some(rest) => format!("{dest}/{rest}"),
        None => format!("{dest}/{}", file.rsplit('/').next().unwrap()),
    }
}

/// Copies `from` to `to` (creating its folders), with its modification time: cargo then sees
/// unchanged sources as unchanged between runs.
pub fn copy_file(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    let modified = std::fs::metadata(from).and_then(|m| m.modified()).unwrap();
    std::fs::File::options().write(true).open(to).and_then(|f| f.set_modified(modified)).unwrap();
}

/// `path` (absolute, in the image) under `root` on this machine.
pub fn in_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

#[test]
fn ignore_patterns_as_docker_applies_them() {
    let ignore = Ignore::parse("*\n!src/\n!target/wheels/*.whl\n!python/pkg/\n**/__pycache__\n");
    assert!(ignore.includes("src/main.rs"));
    assert!(ignore.includes("src/a/b.rs"));
    assert!(!ignore.includes("src/a/__pycache__/x.pyc"));
    assert!(!ignore.includes("Makefile"));
    assert!(!ignore.includes("target/release/crashcatch"));
    assert!(ignore.includes("target/wheels/crashcatch-0.1.0-py3-none-manylinux_2_17_x86_64.whl"));
    assert!(!ignore.includes("target/wheels/build.log"));
    assert!(ignore.includes("python/pkg/mod.py"));
    assert!(!ignore.includes("python/tests/test_x.py"));
    assert_eq!(copy_destination("/src", "src", "./src", "src/main.rs"), "/src/src/main.rs");
    assert_eq!(copy_destination("/src", "Cargo.toml", "./", "Cargo.toml"), "/src/Cargo.toml");
    assert_eq!(copy_destination("/", "target/wheels/*.whl", "/wheels/", "target/wheels/a.whl"), "/wheels/a.whl");
    assert_eq!(
        copy_destination("/app", "examples/docker/project/", "/app/", "examples/docker/project/t/x.py"),
        "/app/t/x.py"
    );
}
