//! The GitHub job summary and `crashcatch summarize`: real crashes (three processes, two of
//! them the same bug) with a hostile test id, the summary read back from the file the runner
//! owns and rendered with a Markdown parser (pulldown-cmark, GitHub's table extension).
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde_json::Value;

/// A test id meant to break out of its table cell.
const HOSTILE: &str = "tests/t.py::test_x[a|b `code` <script>alert(1)</script> [link](http://x) *em* \\| &amp;";

/// Three processes crash: two the same way (the same function), one another way.
fn crashing_script(dir: &Path) -> PathBuf {
    let script = dir.join("matrix.py");
    std::fs::write(
        &script,
        "import ctypes, os, subprocess, sys\n\
         def same():\n\
         \x20   ctypes.string_at(0)\n\
         def different():\n\
         \x20   os.abort()\n\
         if len(sys.argv) > 1:\n\
         \x20   same() if sys.argv[1] == 'same' else different()\n\
         for which, test in [('same', 'matrix.py::first (call)'), ('same', 'HOSTILE (call)'), ('other', 'x.py::third (call)')]:\n\
         \x20   subprocess.run([sys.executable, sys.argv[0], which], env=dict(os.environ, PYTEST_CURRENT_TEST=test))\n"
            .replace("HOSTILE", &HOSTILE.replace('\\', "\\\\")),
    )
    .unwrap();
    script
}

/// The cells of every table row (header first), as rendered text; inline HTML other than
/// `<br>` (which separates list items) fails the test.
fn table_rows(markdown: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut cell: Option<String> = None;
    for ev in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => rows.push(Vec::new()),
            Event::Start(Tag::TableCell) => cell = Some(String::new()),
            Event::End(TagEnd::TableCell) => {
                let c = cell.take().unwrap();
                rows.last_mut().unwrap().push(c);
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(c) = cell.as_mut() {
                    c.push_str(&t);
                }
            }
            Event::InlineHtml(h) | Event::Html(h) => {
                assert_eq!(h.as_ref(), "<br>", "HTML in the summary:\n{markdown}");
                if let Some(c) = cell.as_mut() {
                    c.push('\n');
                }
            }
            Event::Start(Tag::Link { .. }) | Event::Start(Tag::Emphasis) | Event::Start(Tag::Heading { .. })
                if cell.is_some() =>
            {
                panic!("markup from a report's string in a cell: {ev:?}\n{markdown}")
            }
            _ => {}
        }
    }
    rows
}

fn run_matrix(reports: &Path, summary: &Path, workspace: &Path) -> std::process::Output {
    let script = crashing_script(workspace);
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(reports).args(["--quiet", "--"]).arg(venv_python()).arg(&script);
    c.env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", summary).env("GITHUB_WORKSPACE", workspace);
    c.current_dir(workspace);
    run(c)
}

fn json_reports(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
}

#[test]
fn job_summary_has_a_row_per_distinct_crash() {
    let work = out_dir();
    let reports = work.path().join("reports");
    let summary = work.path().join("step_summary.md");
    std::fs::write(&summary, "## an earlier step's summary\n").unwrap();
    let out = run_matrix(&reports, &summary, work.path());
    assert!(out.status.success(), "{}", describe(&out));

    let reps = json_reports(&reports);
    assert_eq!(reps.len(), 3, "{}", describe(&out));
    let ids: Vec<&str> = reps.iter().map(|r| r["fingerprint"].as_str().unwrap()).collect();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "{ids:?}");

    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("## an earlier step's summary\n"), "the runner's file was truncated:\n{text}");
    assert!(text.contains("### crashcatch: 3 crashes, 2 distinct"), "{text}");
    let rows = table_rows(&text);
    assert_eq!(rows.len(), 3, "a header and two rows:\n{text}");
    assert_eq!(rows[0], ["fingerprint", "count", "signal", "faulted in", "Python call site", "tests", "reports"]);
    let same = rows.iter().find(|r| r[1] == "2").unwrap_or_else(|| panic!("no row counts 2:\n{text}"));
    let other = rows.iter().find(|r| r[1] == "1").unwrap();
    assert!(ids.contains(&same[0].as_str()) && ids.contains(&other[0].as_str()));
    assert_eq!(same[2], "SIGSEGV");
    assert_eq!(other[2], "SIGABRT");
    assert!(same[3].contains("string_at in _ctypes"), "{same:?}");
    assert_eq!(same[4], "matrix.py:3 in same", "relative to GITHUB_WORKSPACE");
    let tests: Vec<&str> = same[5].split('\n').collect();
    assert_eq!(tests.len(), 2, "{same:?}");
    assert!(tests.contains(&HOSTILE), "the hostile test id, rendered as itself: {tests:?}");
    assert_eq!(same[6].split('\n').filter(|f| f.ends_with(".json")).count(), 2, "{same:?}");

    // Without GITHUB_ACTIONS nothing is written; nothing either when nothing crashed.
    let before = std::fs::read_to_string(&summary).unwrap();
    let mut c = Command::new(bin());
    c.args(["--quiet", "--", "true"]).env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &summary);
    assert!(run(c).status.success());
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), before);
}

#[test]
fn summarize_groups_the_reports_of_several_jobs() {
    let work = out_dir();
    let (job1, job2) = (work.path().join("artifacts/job1"), work.path().join("artifacts/job2/nested"));
    let summary = work.path().join("unused.md");
    for job in [&job1, &job2] {
        let out = run_matrix(job, &summary, work.path());
        assert!(out.status.success(), "{}", describe(&out));
    }
    // What else lies in downloaded artifacts: other JSON, broken JSON, a link.
    std::fs::write(job1.join("coverage.json"), "{\"totals\": {}}").unwrap();
    std::fs::write(job1.join("broken.json"), "{\"schema_version\": 1, ").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", job1.join("link.json")).unwrap();

    let summarize = |format: &str| {
        let mut c = Command::new(bin());
        c.args(["summarize", "--format", format]).arg(work.path().join("artifacts"));
        run(c)
    };
    let out = summarize("text");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("crashcatch: 6 crashes, 2 distinct\n"), "{stdout}");
    assert!(stdout.contains("  4x  SIGSEGV in "), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().filter(|l| l.starts_with("crashcatch: skipped ")).count(), 2, "{stderr}");
    assert!(stderr.contains("coverage.json: not a crashcatch report"), "{stderr}");

    let out = summarize("markdown");
    let md = String::from_utf8_lossy(&out.stdout);
    let rows = table_rows(&md);
    assert_eq!(rows.len(), 3, "{md}");
    let same = rows.iter().find(|r| r[1] == "4").unwrap_or_else(|| panic!("{md}"));
    assert_eq!(same[6].split('\n').count(), 4);

    let out = summarize("json");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["crashes"], 6);
    assert_eq!(v["groups"].as_array().unwrap().len(), 2);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 2, "{v}");

    // A path that does not exist: said, and exit status 1.
    let mut c = Command::new(bin());
    c.args(["summarize"]).arg(work.path().join("nowhere"));
    let out = run(c);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}
