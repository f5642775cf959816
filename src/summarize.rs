//! `crashcatch summarize DIR...`: the crash and hang reports of several jobs (a CI matrix's
//! downloaded artifacts) grouped by fingerprint, as text, Markdown (the job summary's table) or
//! JSON. Reports are streamed one at a time ([`input`]): only the groups are kept. Exit status
//! 0 when every argument could be read (found reports or not), 1 when one could not.

use crashcatch::report::input;
use crashcatch::report::output::console;
use crashcatch::report::render::escape::json;
use crashcatch::report::render::groups::Groups;
use crashcatch::report::render::markdown;

use crate::cli::{SummarizeArgs, SummaryFormatArg};

pub fn run(a: &SummarizeArgs) -> i32 {
    let found = input::find_reports(&a.paths);
    let mut skipped = found.skipped.clone();
    let mut groups = Groups::default();
    for path in &found.files {
        match input::read_entry(path) {
            Ok(Some(entry)) => groups.add_entry(entry, &[path.display().to_string()], None),
            Ok(None) => {}
            Err(why) => skipped.push(format!("{}: {why}", path.display())),
        }
    }
    // Each line through the console, which escapes it for the terminal (file names are
    // anyone's: a name can hold a newline and a workflow command).
    for line in found.missing.iter().chain(&skipped) {
        console::say(&format!("skipped {line}"));
    }
    let out = match a.format {
        SummaryFormatArg::Text => groups.text(),
        SummaryFormatArg::Markdown => markdown::section("crashcatch", &groups),
        SummaryFormatArg::Json => {
            let mut v = serde_json::to_value(&groups).unwrap_or_default();
            v["skipped"] = serde_json::Value::from(skipped.iter().chain(&found.missing).cloned().collect::<Vec<_>>());
            format!("{}\n", json::harden(serde_json::to_string_pretty(&v).unwrap_or_default()))
        }
    };
    if !console::out(out.as_bytes()) {
        return 1;
    }
    i32::from(!found.missing.is_empty())
}
