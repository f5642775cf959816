//! The man pages and shell completions (`make man`, `make completions`) are generated from the
//! clap definition by scripts/gen-docs, and work: the pages hold every mode with only its own
//! options and render with man(1) where it is installed; bash completes a mode's name and its
//! options by running the generated script; zsh and fish accept theirs where installed.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

#[allow(dead_code)]
#[path = "../src/cli.rs"]
mod cli;
#[path = "../scripts/gen-docs/generate.rs"]
mod generate;

use std::path::Path;
use std::process::Command;

use common::*;

fn which(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[test]
fn man_pages_are_generated_for_every_mode() {
    let dir = out_dir();
    let pages = generate::man_pages(cli::command(), dir.path()).unwrap();
    let names: Vec<String> = pages.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["crashcatch.1", "crashcatch-run.1", "crashcatch-attach.1", "crashcatch-dump.1", "crashcatch-core.1"] {
        assert!(names.contains(&want.to_string()), "{want} missing: {names:?}");
    }
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let top = read("crashcatch.1");
    assert!(top.starts_with(".ie") || top.contains(".TH crashcatch 1"), "{top}");
    for sub in ["attach", "dump", "core", "summarize"] {
        assert!(top.contains(sub), "crashcatch.1 does not name {sub}");
    }
    let dump = read("crashcatch-dump.1");
    assert!(dump.contains("output\\-dir") && dump.contains("PID"), "{dump}");
    assert!(!dump.contains("junit"), "crashcatch-dump.1 lists --junit-xml:\n{dump}");
    assert!(read("crashcatch-attach.1").contains("Exit status"), "attach's page says its exit status");
    if !which("man") {
        skip("man pages rendered", "man is not installed");
        return;
    }
    let out = Command::new("man").arg("-l").arg(dir.path().join("crashcatch-dump.1")).env("MANPAGER", "cat").output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("crashcatch-dump") && text.contains("--output-dir"), "{text}");
        }
        _ => skip("man pages rendered", "man -l failed here (no groff?)"),
    }
}

/// What bash's programmable completion offers for the words so far (the last one being
/// completed), from the generated script.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _crashcatch crashcatch '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words.get(words.len().wrapping_sub(2)).copied().unwrap_or(""),
    );
    let out = Command::new("bash").args(["--norc", "--noprofile", "-c", &program]).output().unwrap();
    assert!(out.status.success(), "bash completion failed:\n{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn shell_completions_are_generated_and_complete() {
    let dir = out_dir();
    let files = generate::completions(cli::command(), dir.path()).unwrap();
    assert_eq!(files.len(), 3, "{files:?}");
    let bash = files.iter().find(|f| f.extension().is_some_and(|e| e == "bash")).expect("a bash script");
    if which("bash") {
        assert_eq!(bash_completes(bash, &["crashcatch", "du"]), ["dump"]);
        let opts = bash_completes(bash, &["crashcatch", "dump", "--"]);
        assert!(opts.contains(&"--output-dir".to_string()) && !opts.contains(&"--junit-xml".to_string()), "{opts:?}");
        let opts = bash_completes(bash, &["crashcatch", "--"]);
        assert!(opts.contains(&"--test-timeout".to_string()), "{opts:?}");
    } else {
        skip("bash completion", "bash is not installed");
    }
    for f in &files {
        assert!(!std::fs::read_to_string(f).unwrap().contains("session"), "{}: the plugin's own mode", f.display());
    }
    for (shell, ext) in [("zsh", "_crashcatch"), ("fish", "crashcatch.fish")] {
        let file = files.iter().find(|f| f.file_name().is_some_and(|n| n == ext)).expect(ext);
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("summarize") && text.contains("output-dir"), "{shell}: {text}");
        if which(shell) {
            let out = Command::new(shell).arg("-n").arg(file).output().unwrap();
            assert!(out.status.success(), "{shell} -n {}:\n{}", file.display(), describe(&out));
        } else {
            skip(&format!("{shell} completion syntax"), &format!("{shell} is not installed"));
        }
    }
}

/// The binary itself: a usage error is one line on stderr naming the mode, exit 2; help is on
/// stdout, exit 0.
#[test]
fn usage_errors_are_one_line_naming_their_mode() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["dump"], &["<PID>", "usage: crashcatch dump [OPTIONS] <PID>"]),
        (&["dumpp", "1"], &["'dumpp'", "a similar subcommand exists: 'dump'"]),
        (&["core"], &["<COREFILE>", "usage: crashcatch core [OPTIONS] <COREFILE>"]),
        (&["python", "x.py"], &["put it after --"]),
        (&[], &["no command given (put it after --)"]),
    ];
    for (args, wants) in cases {
        let out = Command::new(bin()).args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line\n{err}");
        assert!(err.starts_with("crashcatch: "), "{err}");
        for want in *wants {
            assert!(err.contains(want), "{args:?}: {want:?} missing from {err}");
        }
    }
    let out = Command::new(bin()).args(["dump", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: crashcatch dump [OPTIONS] <PID>") && !help.contains("--junit-xml"), "{help}");
}
