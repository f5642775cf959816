//! The crashcatch binary: parse the command line, pick a mode, exit as the traced command did.

mod cli;

use crashcatch::capture;
use crashcatch::supervise::{self, Format, OutputConfig, RunConfig};

fn output(r: &cli::ReportArgs) -> OutputConfig {
    OutputConfig {
        dir: r.output_dir.clone(),
        format: match r.format {
            cli::FormatArg::Text => Format::Text,
            cli::FormatArg::Json => Format::Json,
        },
        quiet: r.quiet,
        junit: r.junit_xml.clone(),
        github: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
    }
}

fn capture_options(r: &cli::ReportArgs) -> capture::Options {
    crashcatch::modules::set_debug_dirs(r.debug_dir.clone());
    crashcatch::modules::debuginfod::configure(r.debuginfod_timeout);
    capture::Options { no_python: r.no_python, show_env: r.show_env }
}

fn run_config(a: cli::RunArgs) -> RunConfig {
    RunConfig {
        output: output(&a.report),
        capture: capture_options(&a.report),
        command: a.command,
        signal_group: a.signal_group,
        hang_timeout: a.hang_timeout,
        subreaper: a.subreaper,
        hang_action: match a.hang_action {
            cli::HangArg::Term => supervise::tracer::HangAction::Term,
            cli::HangArg::Dump => supervise::tracer::HangAction::Dump,
        },
    }
}

fn main() {
    let mode = match cli::parse() {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            // One line of usage, exit 2.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            let first = if e.kind() == ErrorKind::MissingRequiredArgument {
                "no command given (put it after --)"
            } else {
                first
            };
            eprintln!("crashcatch: {first}; usage: crashcatch [OPTIONS] -- CMD [ARGS...] (see --help)");
            std::process::exit(2);
        }
    };
    match mode {
        cli::Mode::Run(args) => {
            let exit = supervise::run(run_config(args));
            supervise::exit_like(exit);
        }
        cli::Mode::Attach(a) => {
            let code = supervise::attach::attach(supervise::attach::AttachConfig {
                pid: a.pid,
                follow_forks: a.follow_forks,
                output: output(&a.report),
                capture: capture_options(&a.report),
            });
            std::process::exit(code);
        }
        cli::Mode::Dump(a) => {
            let code = supervise::attach::dump(supervise::attach::AttachConfig {
                pid: a.pid,
                follow_forks: false,
                output: output(&a.report),
                capture: capture_options(&a.report),
            });
            std::process::exit(code);
        }
    }
}
