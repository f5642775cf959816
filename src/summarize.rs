//! `crashcatch summarize DIR...`: the crash reports of several jobs (a CI matrix's downloaded
//! artifacts) grouped by fingerprint, as text, Markdown (the job summary's table) or JSON.
//! Exit status 0 when every argument could be read (found crashes or not), 1 when one could not.

use std::io::Write;

use crashcatch::capture::analysis::fingerprint;
use crashcatch::report::input;
use crashcatch::report::render::groups::Groups;
use crashcatch::report::render::markdown;

use crate::cli::{SummarizeCli, SummaryFormatArg};

pub fn run(a: &SummarizeCli) -> i32 {
    let read = input::read_reports(&a.paths);
    for line in read.missing.iter().chain(&read.skipped) {
        eprintln!("crashcatch: skipped {line}");
    }
    let mut groups = Groups::default();
    for r in &read.reports {
        let mut crash = r.crash.clone();
        // Reports written before fingerprints existed: computed from the report itself.
        if crash.fingerprint.is_none() {
            crash.fingerprint = Some(fingerprint::fingerprint(&crash, None));
        }
        groups.add(&crash, &[r.path.display().to_string()], None);
    }
    let out = match a.format {
        SummaryFormatArg::Text => groups.text(),
        SummaryFormatArg::Markdown => markdown::section("crashcatch", &groups),
        SummaryFormatArg::Json => {
            let mut v = serde_json::to_value(&groups).unwrap_or_default();
            v["skipped"] =
                serde_json::Value::from(read.skipped.iter().chain(&read.missing).cloned().collect::<Vec<_>>());
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush()).is_err() {
        return 1;
    }
    i32::from(!read.missing.is_empty())
}
