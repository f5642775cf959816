//! Golden reports: the JSON and text reports of real crashes, with what changes from run to run
//! (pids, addresses, times, temporary paths, build-ids, libc's CPU-specific function variants)
//! replaced by placeholders, compared with the snapshots in tests/snapshots/ (insta). They hold
//! the report's shape still while the code behind it moves.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Every pid and tid in the report, numbered in order of first appearance.
fn collect_ids(v: &Value, ids: &mut Vec<i64>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let is_id = matches!(k.as_str(), "pid" | "tid" | "crashed_tid" | "gil_holder_tid" | "finalizing_tid");
                if is_id {
                    if let Some(n) = x.as_i64() {
                        if !ids.contains(&n) {
                            ids.push(n);
                        }
                    }
                }
                collect_ids(x, ids);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ids(x, ids)),
        _ => {}
    }
}

struct Normalizer {
    ids: Vec<i64>,
    /// Text replacements: temporary folders, the repository root, libc's function names.
    words: Vec<(String, String)>,
}

impl Normalizer {
    fn new(report: &Value, tmp: &[&Path]) -> Self {
        let mut ids = Vec::new();
        collect_ids(report, &mut ids);
        let mut words: Vec<(String, String)> = tmp.iter().map(|p| (p.display().to_string(), "<tmp>".into())).collect();
        words.push((root().display().to_string(), "<root>".into()));
        let mut libc_names = Vec::new();
        libc_functions(report, &mut libc_names);
        libc_names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        words.extend(libc_names.into_iter().map(|n| (n, "<libc-fn>".into())));
        Normalizer { ids, words }
    }

    fn text(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.words {
            s = s.replace(from.as_str(), to);
        }
        without_stamps(&s)
    }

    fn id(&self, n: i64) -> Value {
        match self.ids.iter().position(|&x| x == n) {
            Some(i) => Value::String(format!("<id{i}>")),
            None => Value::from(n),
        }
    }

    fn json(&self, key: &str, v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let in_libc = m.get("module").and_then(Value::as_str).is_some_and(|p| p.contains("libc.so"));
                let mut out = serde_json::Map::new();
                for (k, x) in m {
                    let y = match k.as_str() {
                        "time" | "build_id" | "registers" | "timings" | "environment" | "thread_id" => {
                            Value::String(format!("<{k}>"))
                        }
                        "function" | "file" | "line" | "inlined" | "function_offset" if in_libc => {
                            Value::String(format!("<libc-{k}>"))
                        }
                        "pid" | "tid" | "crashed_tid" | "gil_holder_tid" | "finalizing_tid" if x.is_i64() => {
                            self.id(x.as_i64().unwrap_or(0))
                        }
                        _ => self.json(k, x),
                    };
                    out.insert(k.clone(), y);
                }
                Value::Object(out)
            }
            Value::Array(a) => {
                let mut items: Vec<Value> = a.iter().map(|x| self.json(key, x)).collect();
                if key == "modules" {
                    items.sort_by_key(|m| m["path"].as_str().unwrap_or("").to_string());
                }
                Value::Array(items)
            }
            Value::String(s) => {
                let small =
                    s.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok()).is_some_and(|n| n < 0x10000);
                if s.starts_with("0x") && !small {
                    Value::String("<addr>".into())
                } else if let Some(i) = s.find("/fixtures/").filter(|_| key == "file" && s.starts_with('/')) {
                    // A fixture's source path names the checkout that built it.
                    Value::String(format!("<root>{}", &s[i..]))
                } else {
                    Value::String(self.ids_in(&self.text(s)))
                }
            }
            other => other.clone(),
        }
    }

    /// The text report: the same replacements, pids and tids as whole words, addresses; libc's
    /// source locations go (they name the CPU's variant) and runs of spaces are folded, since
    /// column widths follow the names.
    fn report_text(&self, s: &str) -> String {
        let s: Vec<String> = self
            .text(s)
            .lines()
            .map(|l| {
                let l = match l.find("libc.so.6") {
                    Some(i) if l.trim_start().starts_with('#') => format!("{}libc.so.6 <libc-loc>", &l[..i]),
                    _ => l.to_string(),
                };
                let mut folded = String::new();
                for (i, part) in l.split(' ').enumerate() {
                    if i > 0 && !(part.is_empty() && folded.ends_with(' ')) {
                        folded.push(' ');
                    }
                    folded.push_str(part);
                }
                folded.trim_end().to_string()
            })
            .collect();
        self.ids_in(&s.join("\n"))
    }

    /// Pids and tids written as whole words, and addresses, in a text.
    fn ids_in(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if let Ok(n) = word.parse::<i64>() {
                match self.ids.iter().position(|&x| x == n) {
                    Some(i) => out.push_str(&format!("<id{i}>")),
                    None => out.push_str(word),
                }
            } else if word.starts_with("0x") && word.len() > 6 {
                out.push_str("<addr>");
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }
}

/// `20261126T125018` (a report file's time stamp) becomes `<stamp>`.
fn without_stamps(s: &str) -> String {
    let b = s.as_bytes();
    let is_stamp = |i: usize| {
        i + 15 <= b.len()
            && b[i..i + 8].iter().all(u8::is_ascii_digit)
            && b[i + 8] == b'T'
            && b[i + 9..i + 15].iter().all(u8::is_ascii_digit)
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if is_stamp(i) {
            out.push_str("<stamp>");
            i += 15;
        } else {
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The names of libc's functions in the report (frames and their inlined calls): they name the
/// CPU's variant (`__strlen_evex`, `__strlen_avx2`).
fn libc_functions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("module").and_then(Value::as_str).is_some_and(|p| p.contains("libc.so")) {
                let inlined = m.get("inlined").and_then(Value::as_array).into_iter().flatten();
                let names = m.get("function").into_iter().chain(inlined.filter_map(|i| i.get("function")));
                for f in names.filter_map(Value::as_str) {
                    if !out.iter().any(|x| x == f) {
                        out.push(f.to_string());
                    }
                }
            }
            m.values().for_each(|x| libc_functions(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| libc_functions(x, out)),
        _ => {}
    }
}

fn snapshot_both(name: &str, caught: &Caught, tmp: &[&Path]) {
    let report = caught.report().unwrap_or_else(|| panic!("no report\n{}", describe(&caught.output)));
    let n = Normalizer::new(&report, &[&[caught.dir.path()], tmp].concat());
    let json = serde_json::to_string_pretty(&n.json("", &report)).unwrap();
    insta::assert_snapshot!(format!("{name}_json"), json);
    let text = std::fs::read_to_string(&caught.text_files[0]).unwrap();
    insta::assert_snapshot!(format!("{name}_text"), n.report_text(&text));
}

#[test]
fn native_null_deref_report_is_stable() {
    let exe = fixture(Variant::Fp, "null_deref");
    let caught = run_caught_in(NO_ARGS, &[exe.as_os_str()]);
    snapshot_both("native_null_deref", &caught, &[]);
}

fn pyenv_311() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("PYENV_ROOT")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".pyenv")))?;
    let p = home.join("versions/3.11.7/bin/python3.11");
    p.exists().then_some(p)
}

#[test]
fn python_ctypes_report_is_stable() {
    let Some(py) = pyenv_311() else {
        skip("golden python report", "pyenv 3.11.7 is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nest.py");
    std::fs::write(
        &script,
        "import ctypes, os, threading\n\
         r, w = os.pipe()\n\
         tid = []\n\
         def waiter():\n\
         \x20   tid.append(threading.get_native_id())\n\
         \x20   os.read(r, 1)\n\
         threading.Thread(target=waiter, name='waiter').start()\n\
         while not tid: pass\n\
         # Crash only once the waiter is blocked in read(2) (syscall 0), so its stack is the same every run.\n\
         while not open('/proc/self/task/%d/syscall' % tid[0]).read().startswith('0 '): pass\n\
         class Outer:\n\
         \x20   def method(self):\n\
         \x20       return inner(1)\n\
         def inner(n):\n\
         \x20   if n:\n\
         \x20       return inner(n - 1)\n\
         \x20   return ctypes.string_at(0)\n\
         Outer().method()\n",
    )
    .unwrap();
    let caught = run_caught_in(NO_ARGS, &[py.as_os_str(), script.as_os_str()]);
    snapshot_both("python311_ctypes", &caught, &[dir.path()]);
}
