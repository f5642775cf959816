//! The crashcatch binary: parse the command line, pick a mode, exit as the traced command did.

mod cli;
mod summarize;
mod upload;

use crashcatch::report::model::TimeoutAction;
use crashcatch::report::output::sentry::{self, SentryConfig};
use crashcatch::report::output::{console, Format, OutputConfig, Print};
use crashcatch::report::render::GithubAnnotation;
use crashcatch::supervise::{self, attach, session, subprocesses, test_timeout, tracer::HangAction, RunConfig};
use crashcatch::{capture, postmortem};

/// The outputs of a mode: its report options, the watching modes' `-q` and `--junit-xml`, the
/// crash tracker, and where the report is printed.
fn output(
    r: &cli::ReportArgs,
    watch: Option<&cli::WatchArgs>,
    tracker: Option<&cli::TrackerArgs>,
    print: Print,
) -> OutputConfig {
    let github = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true").then(|| GithubAnnotation {
        workspace: std::env::var_os("GITHUB_WORKSPACE").filter(|w| !w.is_empty()).map(Into::into),
    });
    OutputConfig {
        dir: r.output_dir.clone(),
        format: match r.format {
            cli::FormatArg::Text => Format::Text,
            cli::FormatArg::Json => Format::Json,
        },
        print,
        quiet: watch.is_some_and(|w| w.quiet) || print == Print::Nowhere,
        junit: watch.and_then(|w| w.junit_xml.clone()),
        step_summary: github
            .as_ref()
            .and(std::env::var_os("GITHUB_STEP_SUMMARY"))
            .filter(|p| !p.is_empty())
            .map(Into::into),
        github,
        sentry: tracker.and_then(sentry_config),
    }
}

/// `--sentry-dsn` (unset or empty: nothing is sent; `--sentry-timeout 0` neither). A DSN that
/// does not parse is a usage error, told without quoting it (it holds the key).
fn sentry_config(r: &cli::TrackerArgs) -> Option<SentryConfig> {
    let dsn = r.sentry_dsn.as_deref().map(str::trim).filter(|d| !d.is_empty())?;
    let timeout = r.sentry_timeout.unwrap_or(sentry::DEFAULT_TIMEOUT);
    match sentry::Dsn::parse(dsn) {
        Ok(dsn) => (!timeout.is_zero()).then_some(SentryConfig { dsn, timeout }),
        Err(e) => {
            console::say(&format!("--sentry-dsn: {e}"));
            std::process::exit(2);
        }
    }
}

/// `dump` and `core` print their report on stdout; `-q` not at all.
fn product(quiet: bool) -> Print {
    if quiet {
        Print::Nowhere
    } else {
        Print::Stdout
    }
}

fn capture_options(r: &cli::ReportArgs) -> capture::Options {
    let debuginfod = crashcatch::modules::debuginfod::config_from_env(r.debuginfod_timeout);
    capture::Options {
        no_python: r.no_python,
        locals: r.locals,
        show_env: r.show_env,
        debug_dirs: r.debug_dir.clone(),
        debuginfod: debuginfod.enabled().then_some(debuginfod),
        report_budget: r.report_budget,
    }
}

fn run_config(a: cli::RunArgs) -> RunConfig {
    RunConfig {
        output: output(&a.report, Some(&a.watch), Some(&a.tracker), Print::Stderr),
        capture: capture_options(&a.report),
        command: a.command,
        signal_group: a.signal_group,
        hang_timeout: a.hang_timeout,
        subreaper: a.subreaper,
        test_timeout: test_timeout_config(&a.timeouts),
        core_dump: core_limits(&a.cores),
        hang_action: match a.hang_action {
            cli::HangArg::Term => HangAction::Term,
            cli::HangArg::Dump => HangAction::Dump,
        },
    }
}

fn test_timeout_config(a: &cli::TimeoutArgs) -> Option<test_timeout::TestTimeoutConfig> {
    a.test_timeout.map(|limit| test_timeout::TestTimeoutConfig {
        limit,
        action: match a.test_timeout_action {
            cli::TestTimeoutArg::Kill => TimeoutAction::Kill,
            cli::TestTimeoutArg::Term => TimeoutAction::Term,
            cli::TestTimeoutArg::Dump => TimeoutAction::Dump,
        },
    })
}

fn core_limits(a: &cli::CoreFileArgs) -> Option<supervise::CoreLimits> {
    a.core.then_some(supervise::CoreLimits {
        per_core: a.core_max_mb.saturating_mul(1 << 20),
        total: a.core_max_total_mb.saturating_mul(1 << 20),
    })
}

fn session_config(a: &cli::SessionArgs) -> session::SessionConfig {
    session::SessionConfig {
        pid: a.pid,
        notify_fd: a.notify_fd,
        go_fd: a.go_fd,
        output: output(&a.report, Some(&a.watch), Some(&a.tracker), Print::Stderr),
        capture: capture_options(&a.report),
        test_timeout: test_timeout_config(&a.timeouts),
        core_dump: core_limits(&a.cores),
    }
}

fn attach_config(a: &cli::AttachArgs) -> attach::AttachConfig {
    attach::AttachConfig {
        pid: a.pid,
        follow_forks: a.follow_forks,
        output: output(&a.report, Some(&a.watch), Some(&a.tracker), Print::Stderr),
        capture: capture_options(&a.report),
    }
}

fn dump_config(a: &cli::DumpArgs) -> attach::AttachConfig {
    attach::AttachConfig {
        pid: a.pid,
        follow_forks: false,
        output: output(&a.report, None, None, product(a.quiet)),
        capture: capture_options(&a.report),
    }
}

fn core_config(a: cli::CoreArgs) -> postmortem::CoreConfig {
    postmortem::CoreConfig {
        output: output(&a.report, None, Some(&a.tracker), product(a.quiet)),
        capture: capture_options(&a.report),
        options: crashcatch::process::core::CoreOptions { exe: a.exe, sysroot: a.sysroot },
        core: a.core,
    }
}

/// Ends the process after a command line that does not parse: help and version are printed
/// whole on stdout (exit 0); a usage error is one line on stderr (exit 2).
fn exit_with_usage_error(e: clap::Error) -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match cli::refusal(&e, &args) {
        cli::Refusal::Print(text) => {
            console::out(text.as_bytes());
            std::process::exit(0)
        }
        cli::Refusal::Usage(line) => {
            console::say(&line);
            std::process::exit(2)
        }
    }
}

fn main() {
    // First: a panic anywhere prints one line, never a backtrace, and never on a closed stderr.
    crashcatch::contain::install(crashcatch::report::output::console::say);
    let mode = match cli::parse() {
        Ok(m) => m,
        Err(e) => exit_with_usage_error(e),
    };
    match mode {
        cli::Mode::Run(args) => supervise::exit_like(supervise::run(run_config(args))),
        cli::Mode::Attach(a) => std::process::exit(attach::attach(attach_config(&a))),
        cli::Mode::Dump(a) if a.subprocesses => std::process::exit(subprocesses::dump(dump_config(&a))),
        cli::Mode::Dump(a) => std::process::exit(attach::dump(dump_config(&a))),
        cli::Mode::Core(a) => std::process::exit(postmortem::run(core_config(a))),
        cli::Mode::Summarize(a) => std::process::exit(summarize::run(&a)),
        cli::Mode::Upload(a) => std::process::exit(upload::run(&a)),
        cli::Mode::Session(a) => std::process::exit(session::session(session_config(&a))),
    }
}
