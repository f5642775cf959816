//! Render snapshots: the report models checked in under tests/data/reports/ (made once from real
//! runs, then cut down and edited; hostile.json by hand) through every renderer: the text report
//! with and without colour, JSON, the JUnit testcase, the GitHub annotation, the Markdown job
//! summary, `crashcatch summarize`'s text and the end-of-run line. No compiler, interpreter or
//! libc is involved, so they run anywhere, and any change to a renderer shows as a diff of
//! tests/snapshots/render/ to review. tests/golden.rs keeps the end-to-end view.
//!
//! Beside the snapshots, what must hold whatever the snapshot says: no raw control character or
//! workflow command in any medium, colour codes only ours, the JSON reading back as the same
//! model, the JUnit testcase parsing as XML.
//!
//! The reports: crash (ctypes), native_thread (a pthread of a C extension, no Python frames),
//! abort (a failed assert), stack_overflow (cut to 64 frames, the gap in `elided`),
//! finalization (a callback after Py_FinalizeEx), hang (`--hang-timeout`), test_timeout
//! (`--test-timeout` in pytest), dump_asyncio (`crashcatch dump` of a deadlocked event loop),
//! crash_in_task (a crash in a running task), thread_name (a NULL function pointer called in a
//! `threading.Thread` named kafka-poller, 3.12), side_by_side (crash with its Python stack not
//! merged), degraded (`--report-budget 0`: frames unnamed; its unwind error added), hostile
//! (every string a target, a report file or the environment can set, holding escape sequences,
//! C1 CSI, bidi overrides, U+2028, NUL, newlines, `::error` and `##[error]`, XML markup).
//! A changed renderer fails here with the diff; after reading it, accept with
//! `INSTA_UPDATE=always cargo test --test render_snapshots` (or `cargo insta review`).
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

use std::path::{Path, PathBuf};

use crashcatch::report::model::Crash;
use crashcatch::report::output::{summary_line, Emitted};
use crashcatch::report::render::escape::is_hostile;
use crashcatch::report::render::groups::Groups;
use crashcatch::report::render::{junit, markdown, GithubAnnotation, Json, Render, Style, Text};

/// The checkout the reports' Python files are in (GITHUB_WORKSPACE, the summary's root).
const WORKSPACE: &str = "/home/dev/proj";

fn reports_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reports")
}

fn load(name: &str) -> Crash {
    let path = reports_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn snapshot(name: &str, renderer: &str, out: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/render");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(reports_dir().join(format!("{name}.json")));
    settings.bind(|| insta::assert_snapshot!(format!("{name}__{renderer}"), out));
}

/// Raw control characters and the like (a newline is fine), with where they are.
fn raw_hostile(s: &str) -> Vec<(usize, char)> {
    s.char_indices().filter(|&(_, c)| c != '\n' && is_hostile(c)).collect()
}

/// What a renderer wrote that it must not have, for the test's end: every snapshot of a report
/// is taken (and can be read) before the test fails.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// No raw control character (nor a bidirectional override, a line separator) in `s`.
    fn raw(&mut self, what: &str, s: &str) {
        let raw = raw_hostile(s);
        if !raw.is_empty() {
            self.0.push(format!("{what}: raw control characters {raw:?}"));
        }
    }

    /// What a terminal and a CI log must never see from a target: [`Problems::raw`], a line
    /// GitHub's runner takes as a workflow command (`::` after spaces), or `##[` anywhere.
    fn inert(&mut self, what: &str, s: &str) {
        self.raw(what, s);
        for l in s.lines() {
            if l.trim_start().starts_with("::") {
                self.0.push(format!("{what}: a workflow command line: {l:?}"));
            }
            if l.contains("##[") {
                self.0.push(format!("{what}: a legacy workflow command: {l:?}"));
            }
        }
    }

    fn check(&mut self, what: &str, ok: bool) {
        if !ok {
            self.0.push(what.to_string());
        }
    }
}

/// Our colour codes, as tags; any other escape sequence is left raw (and fails the test).
fn colour_tags(s: &str) -> String {
    [("\x1b[1;31m", "<red>"), ("\x1b[1m", "<bold>"), ("\x1b[2m", "<dim>"), ("\x1b[0m", "</>")]
        .iter()
        .fold(s.to_string(), |s, (code, tag)| s.replace(code, tag))
}

fn without_tags(s: &str) -> String {
    ["<red>", "<bold>", "<dim>", "</>"].iter().fold(s.to_string(), |s, tag| s.replace(tag, ""))
}

fn text(c: &Crash, color: bool) -> String {
    Text { style: Style { color } }.render(c)
}

fn groups_of(crashes: &[Crash]) -> Groups {
    let mut g = Groups::default();
    for c in crashes {
        let names: Vec<String> = c.files.iter().map(|f| f.rsplit('/').next().unwrap_or(f).to_string()).collect();
        g.add(c, &names, Some(Path::new(WORKSPACE)));
    }
    g
}

fn emitted(crashes: &[Crash]) -> Vec<Emitted> {
    crashes.iter().map(|c| Emitted::of(c, c.files.iter().map(PathBuf::from).collect())).collect()
}

/// One report through every renderer.
fn render_all(name: &str) {
    let c = load(name);
    let mut p = Problems::default();

    let plain = text(&c, false);
    p.inert("text", &plain);
    snapshot(name, "text", &plain);

    let colour = colour_tags(&text(&c, true));
    p.inert("colour text", &colour);
    p.check("colour text: differs from the plain text by more than colour", without_tags(&colour) == plain);
    snapshot(name, "text_colour", &colour);

    let json = Json.render(&c);
    p.inert("json", &json);
    let back: serde_json::Value = serde_json::from_str(&json).expect("the JSON report parses");
    p.check("json: does not read back as the same model", back == serde_json::to_value(&c).unwrap());
    snapshot(name, "json", &json);

    let case = junit::testcase(&c);
    p.raw("junit", &case);
    p.check("junit: a legacy workflow command", !case.contains("##["));
    let suite = format!("<testsuites>\n{}</testsuites>\n", junit::suite(std::slice::from_ref(&case)));
    p.check("junit: not XML", roxmltree::Document::parse(&suite).is_ok());
    snapshot(name, "junit", &case);

    let annotation = GithubAnnotation { workspace: Some(WORKSPACE.into()) }.render(&c);
    p.raw("annotation", &annotation);
    p.check("annotation: not one ::error line", annotation.starts_with("::error ") && annotation.lines().count() == 1);
    snapshot(name, "github", &annotation);

    let groups = groups_of(std::slice::from_ref(&c));
    let md = markdown::section("crashcatch", &groups);
    p.raw("markdown", &md);
    snapshot(name, "markdown", &md);
    let summarize = groups.text();
    p.inert("summarize", &summarize);
    snapshot(name, "summarize", &summarize);

    let line = summary_line(&emitted(std::slice::from_ref(&c))).unwrap_or_else(|| "(no line)".into());
    p.inert("summary line", &line);
    snapshot(name, "summary_line", &line);

    assert!(p.0.is_empty(), "{name}:\n{}", p.0.join("\n"));
}

/// A test per report, and the list of them all.
macro_rules! reports {
    ($($name:ident),* $(,)?) => {
        /// Every report under tests/data/reports/, by file stem.
        const REPORTS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                render_all(stringify!($name));
            }
        )*
    };
}

reports!(
    abort,
    crash,
    crash_in_task,
    degraded,
    dump_asyncio,
    finalization,
    hang,
    hostile,
    native_thread,
    side_by_side,
    stack_overflow,
    test_timeout,
    thread_name,
);

/// A report file nobody renders would be a snapshot nobody reviews.
#[test]
fn every_report_file_is_rendered() {
    let mut found: Vec<String> = std::fs::read_dir(reports_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| p.file_stem()?.to_str().map(String::from))
        .collect();
    found.sort();
    assert_eq!(found, REPORTS);
}

/// The end of a run with all of them: the job summary's table, `crashcatch summarize`, the
/// end-of-run line.
#[test]
fn the_whole_run() {
    let all: Vec<Crash> = REPORTS.iter().map(|n| load(n)).collect();
    let groups = groups_of(&all);
    snapshot("all", "markdown", &markdown::section("crashcatch", &groups));
    snapshot("all", "summarize", &groups.text());
    snapshot("all", "summary_line", &summary_line(&emitted(&all)).unwrap_or_default());
}
