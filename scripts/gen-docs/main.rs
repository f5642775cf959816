//! Writes crashcatch's man pages and shell completions from its clap definition (src/cli.rs),
//! so they never drift from `--help`: `make man` (target/man/crashcatch.1 and one page per
//! mode), `make completions` (target/completions/: bash, zsh, fish).
//!
//! Usage: `cargo run --example gen-docs -- man|completions DIR`
// A build tool, not the supervisor: it writes where it is told and prints freely.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

#[allow(dead_code)]
#[path = "../../src/cli.rs"]
mod cli;
mod generate;

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (what, dir) = match args.as_slice() {
        [what, dir] => (what.as_str(), PathBuf::from(dir)),
        _ => {
            eprintln!("usage: gen-docs man|completions DIR");
            std::process::exit(2);
        }
    };
    let written = match what {
        "man" => generate::man_pages(cli::command(), &dir),
        "completions" => generate::completions(cli::command(), &dir),
        other => {
            eprintln!("gen-docs: {other}: use man or completions");
            std::process::exit(2);
        }
    };
    match written {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
        }
        Err(e) => {
            eprintln!("gen-docs: {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
