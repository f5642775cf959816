//! The command line, parsed into plain configuration.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum HangArg {
    Term,
    Dump,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TestTimeoutArg {
    Kill,
    Term,
    Dump,
}

/// A per-test limit: seconds, fractions allowed, more than 0 and at most a week.
fn test_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 604_800.0 => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a number of seconds above 0 (at most 604800)")),
    }
}

/// A number of seconds, fractions allowed, from 0 to an hour.
fn seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a number of seconds from 0 to 3600")),
    }
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Write each report as DIR/<kind>-<pid>-<timestamp>.json and .txt (kind: crash, dump, hang)
    #[arg(long, value_name = "DIR", env = "CRASHCATCH_OUTPUT_DIR")]
    pub output_dir: Option<PathBuf>,
    /// What goes to stderr when something crashes
    #[arg(long, value_enum, default_value = "text", env = "CRASHCATCH_FORMAT")]
    pub format: FormatArg,
    /// Nothing on stderr unless something crashed
    #[arg(short, long, env = "CRASHCATCH_QUIET", value_parser = clap::builder::FalseyValueParser::new())]
    pub quiet: bool,
    /// Write (or merge into) a JUnit XML file: one testcase with an <error> per crash
    #[arg(long, value_name = "FILE", env = "CRASHCATCH_JUNIT_XML")]
    pub junit_xml: Option<PathBuf>,
    /// Also look for separate debug files here (laid out like /usr/lib/debug); repeatable
    #[arg(long, value_name = "DIR", env = "CRASHCATCH_DEBUG_DIRS", value_delimiter = ':')]
    pub debug_dir: Vec<PathBuf>,
    /// Total time for fetching missing debug files from DEBUGINFOD_URLS (default 5; 0: never)
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_DEBUGINFOD_TIMEOUT", value_parser = seconds)]
    pub debuginfod_timeout: Option<std::time::Duration>,
    /// How long one report may take once the process is stopped (default 2); past it, frames keep
    /// their addresses only and the report says what was left out
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_REPORT_BUDGET", value_parser = seconds)]
    pub report_budget: Option<std::time::Duration>,
    /// Do not read Python frames
    #[arg(long)]
    pub no_python: bool,
    /// Show every Python frame's arguments and local variables (short strings, the first items
    /// of containers); by default only the crashed frame's arguments, without string contents
    #[arg(long, env = "CRASHCATCH_LOCALS", value_parser = clap::builder::FalseyValueParser::new())]
    pub locals: bool,
    /// Put every environment variable in the report (default: only a short allow-list)
    #[arg(long, env = "CRASHCATCH_SHOW_ENV", value_parser = clap::builder::FalseyValueParser::new())]
    pub show_env: bool,
    /// Send each crash and hang report as an event to this Sentry-protocol tracker (Sentry, GlitchTip, Bugsink)
    #[arg(long, value_name = "DSN", env = "CRASHCATCH_SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// Total time for sending events to the tracker, retries and rate-limit waits included (default 5; 0: send nothing)
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_SENTRY_TIMEOUT", value_parser = seconds)]
    pub sentry_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Start the command in a process group of its own and forward signals to the whole group (like tini -g)
    #[arg(long)]
    pub signal_group: bool,
    /// Adopt orphaned descendants and reap them, as PID 1 does (PR_SET_CHILD_SUBREAPER)
    #[arg(long, env = "CRASHCATCH_SUBREAPER", value_parser = clap::builder::FalseyValueParser::new())]
    pub subreaper: bool,
    /// Dump every traced process's stacks when the command runs longer than SECONDS
    #[arg(long, value_name = "SECONDS")]
    pub hang_timeout: Option<u32>,
    /// What to do at the hang timeout after dumping: `term` (SIGTERM the command) or `dump` (leave it running)
    #[arg(long, value_enum, default_value = "term")]
    pub hang_action: HangArg,
    /// Report (kind hang) a process whose pytest test has run longer than SECONDS, then act as --test-timeout-action says
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_TEST_TIMEOUT", value_parser = test_seconds)]
    pub test_timeout: Option<std::time::Duration>,
    /// After a test timeout's report: `kill` (SIGKILL that process; an xdist worker is replaced), `term` (SIGTERM), `dump` (leave it)
    #[arg(long, value_enum, default_value = "kill", env = "CRASHCATCH_TEST_TIMEOUT_ACTION")]
    pub test_timeout_action: TestTimeoutArg,
    /// At a crash, also write a core file of the process next to the report (for gdb or `crashcatch core`)
    #[arg(long, env = "CRASHCATCH_CORE", value_parser = clap::builder::FalseyValueParser::new())]
    pub core: bool,
    /// Largest core --core writes, in MB; contents that do not fit (stacks are kept first) are left out and noted
    #[arg(long, value_name = "MB", default_value = "2048")]
    pub core_max_mb: u64,
    /// Most --core writes in all during the run, in MB; cores past it are skipped, with a line saying so
    #[arg(long, value_name = "MB", default_value = "4096")]
    pub core_max_total_mb: u64,
    /// The command to run, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Every mode, one usage line each: what `--help` shows first.
const MODES: &str = "crashcatch [OPTIONS] -- CMD [ARGS...]        run CMD, report any native crash
       crashcatch run [OPTIONS] -- CMD [ARGS...]    the same, spelled out
       crashcatch attach [OPTIONS] PID              watch a running process; report a crash; Ctrl-C detaches
       crashcatch dump [OPTIONS] PID                every thread's native and Python stack now, then detach
       crashcatch core [OPTIONS] COREFILE           the same report from a core dump (post-mortem)
       crashcatch summarize [--format F] DIR...     crash reports of several jobs, grouped by fingerprint
       crashcatch upload --sentry-dsn DSN DIR...    send the crash and hang reports found to a crash tracker

'crashcatch attach --help', 'crashcatch dump --help' and 'crashcatch core --help' show their options.";

/// Catch native crashes of Python processes and explain them.
#[derive(Debug, Parser)]
#[command(name = "crashcatch", version, override_usage = MODES)]
pub struct RunCli {
    #[command(flatten)]
    pub run: RunArgs,
}

/// Attach to a running process, wait for a crash, report it; Ctrl-C detaches.
#[derive(Debug, Parser)]
#[command(name = "crashcatch attach", version)]
pub struct AttachCli {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Also follow the processes it forks from now on
    #[arg(long)]
    pub follow_forks: bool,
    /// The process to watch
    pub pid: i32,
}

/// Print every thread's native and Python stack now, then detach.
#[derive(Debug, Parser)]
#[command(name = "crashcatch dump", version)]
pub struct DumpCli {
    #[command(flatten)]
    pub report: ReportArgs,
    /// The process to look at
    pub pid: i32,
}

/// The report of a crash from its core file (kernel core, gcore, systemd-coredump; gzip or zstd).
#[derive(Debug, Parser)]
#[command(name = "crashcatch core", version)]
pub struct CoreCli {
    #[command(flatten)]
    pub report: ReportArgs,
    /// The program that dumped core, when it is not at the path the core names
    #[arg(long, value_name = "PROGRAM")]
    pub exe: Option<PathBuf>,
    /// Look up the process's files under DIR (the machine or container the core came from)
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// The core file (plain, .gz or .zst)
    pub core: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormatArg {
    Text,
    Markdown,
    Json,
}

/// Read the JSON crash reports of several jobs (downloaded CI artifacts) and print one row per
/// distinct crash (fingerprint): count, tests, signal, faulting function, Python call site, files.
#[derive(Debug, Parser)]
#[command(name = "crashcatch summarize", version)]
pub struct SummarizeCli {
    /// text, markdown (GitHub's job summary table) or json
    #[arg(long, value_enum, default_value = "text")]
    pub format: SummaryFormatArg,
    /// Report files, or folders searched for *.json reports
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
}

/// Send the crash and hang reports found in folders (CI artifacts) to a Sentry-protocol tracker,
/// one event each; a report sent before (live, or by an earlier upload) is not counted twice.
#[derive(Debug, Parser)]
#[command(name = "crashcatch upload", version)]
pub struct UploadCli {
    /// The tracker's DSN (https://KEY@HOST/PROJECT)
    #[arg(long, value_name = "DSN", env = "CRASHCATCH_SENTRY_DSN", hide_env_values = true, required = true)]
    pub sentry_dsn: String,
    /// Total time for sending every event, retries and rate-limit waits included (default 60)
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_SENTRY_TIMEOUT", value_parser = seconds)]
    pub sentry_timeout: Option<std::time::Duration>,
    /// Report files, or folders searched for *.json reports
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
}

/// The mode, picked by the first argument: `run` (or none), `attach`, `dump`, `core`,
/// `summarize`, `upload`.
pub enum Invocation {
    Run(RunArgs),
    Attach(AttachCli),
    Dump(DumpCli),
    Core(CoreCli),
    Summarize(SummarizeCli),
    Upload(UploadCli),
}

/// Ends the process after a command line that does not parse: help and version are printed
/// whole (exit 0); anything else is one line with the usage hint (exit 2).
pub fn exit_with_usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
    let first =
        if e.kind() == ErrorKind::MissingRequiredArgument { "no command given (put it after --)" } else { first };
    crashcatch::report::output::console::say(&format!(
        "{first}; usage: crashcatch [OPTIONS] -- CMD [ARGS...] (see --help)"
    ));
    std::process::exit(2);
}

/// Parses the process's arguments.
pub fn parse() -> Result<Invocation, clap::Error> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "attach") {
        args.remove(1);
        return AttachCli::try_parse_from(args).map(Invocation::Attach);
    }
    if args.get(1).is_some_and(|a| a == "dump") {
        args.remove(1);
        return DumpCli::try_parse_from(args).map(Invocation::Dump);
    }
    if args.get(1).is_some_and(|a| a == "core") {
        args.remove(1);
        return CoreCli::try_parse_from(args).map(Invocation::Core);
    }
    if args.get(1).is_some_and(|a| a == "summarize") {
        args.remove(1);
        return SummarizeCli::try_parse_from(args).map(Invocation::Summarize);
    }
    if args.get(1).is_some_and(|a| a == "upload") {
        args.remove(1);
        return UploadCli::try_parse_from(args).map(Invocation::Upload);
    }
    if args.get(1).is_some_and(|a| a == "run") {
        args.remove(1);
    }
    RunCli::try_parse_from(args).map(|c| Invocation::Run(c.run))
}
