//! The command line, parsed into plain configuration: one clap definition for every mode, from
//! which `--help`, the usage errors, the man pages and the shell completions all come
//! (examples/gen_docs writes the last two: `make man`, `make completions`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

/// Options of every mode that makes reports (run, attach, dump, core).
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Write each report as DIR/<kind>-<pid>-<timestamp>.json and .txt (kind: crash, dump, hang)
    #[arg(long, value_name = "DIR", env = "CRASHCATCH_OUTPUT_DIR")]
    pub output_dir: Option<PathBuf>,
    /// How reports are printed
    #[arg(long, value_enum, default_value = "text", env = "CRASHCATCH_FORMAT")]
    pub format: FormatArg,
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
}

/// Options of the modes whose crash and hang reports can go to a crash tracker (run, attach,
/// core).
#[derive(Debug, Args, Clone)]
pub struct TrackerArgs {
    /// Send each crash and hang report as an event to this Sentry-protocol tracker (Sentry, GlitchTip, Bugsink)
    #[arg(long, value_name = "DSN", env = "CRASHCATCH_SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// Total time for sending events to the tracker, retries and rate-limit waits included (default 5; 0: send nothing)
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_SENTRY_TIMEOUT", value_parser = seconds)]
    pub sentry_timeout: Option<std::time::Duration>,
}

/// Options of the modes that watch processes for crashes (run, attach).
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// Nothing on stderr unless something crashed
    #[arg(short, long, env = "CRASHCATCH_QUIET", value_parser = clap::builder::FalseyValueParser::new())]
    pub quiet: bool,
    /// Write (or merge into) a JUnit XML file: each crash in its test's testcase (pytest's file), or a testcase of its own
    #[arg(long, value_name = "FILE", env = "CRASHCATCH_JUNIT_XML")]
    pub junit_xml: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(flatten)]
    pub tracker: TrackerArgs,
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
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub cores: CoreFileArgs,
    /// The command to run, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `--test-timeout` (run, and the pytest plugin's session).
#[derive(Debug, Args, Clone)]
pub struct TimeoutArgs {
    /// Report (kind hang) a process whose pytest test has run longer than SECONDS, then act as --test-timeout-action says
    #[arg(long, value_name = "SECONDS", env = "CRASHCATCH_TEST_TIMEOUT", value_parser = test_seconds)]
    pub test_timeout: Option<std::time::Duration>,
    /// After a test timeout's report: `kill` (SIGKILL that process; an xdist worker is replaced), `term` (SIGTERM), `dump` (leave it)
    #[arg(long, value_enum, default_value = "kill", env = "CRASHCATCH_TEST_TIMEOUT_ACTION")]
    pub test_timeout_action: TestTimeoutArg,
}

/// `--core` (run, and the pytest plugin's session).
#[derive(Debug, Args, Clone)]
pub struct CoreFileArgs {
    /// At a crash, also write a core file of the process next to the report (for gdb or `crashcatch core`)
    #[arg(long, env = "CRASHCATCH_CORE", value_parser = clap::builder::FalseyValueParser::new())]
    pub core: bool,
    /// Largest core --core writes, in MB; contents that do not fit (stacks are kept first) are left out and noted
    #[arg(long, value_name = "MB", default_value = "2048")]
    pub core_max_mb: u64,
    /// Most --core writes in all during the run, in MB; cores past it are skipped, with a line saying so
    #[arg(long, value_name = "MB", default_value = "4096")]
    pub core_max_total_mb: u64,
}

/// `crashcatch session`: not for people. The pytest plugin starts it to watch its own running
/// session (see supervise/session.rs for the handshake over the two descriptors).
#[derive(Debug, Args, Clone)]
pub struct SessionArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(flatten)]
    pub tracker: TrackerArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub cores: CoreFileArgs,
    /// Where crashcatch says its pid, then whether it watches the session ("ok" or "error: why")
    #[arg(long, value_name = "FD")]
    pub notify_fd: i32,
    /// Where the plugin says "go" once it allowed crashcatch as its tracer (PR_SET_PTRACER)
    #[arg(long, value_name = "FD")]
    pub go_fd: i32,
    /// The pytest process
    #[arg(value_name = "PID")]
    pub pid: i32,
}

/// How `crashcatch attach` ends, said in `attach --help` and the man page.
const ATTACH_STATUS: &str = "Exit status: 128+N when the process was killed by signal N (139: a SIGSEGV, \
caught and reported); its own exit code when it exited; 0 when crashcatch detached and left it running; \
125 when it could not attach (one line says why).";

const SUMMARIZE_STATUS: &str = "Exit status: 0 when every argument was read (reports found or \
not); 1 when an argument could not be read (missing, unreadable) or the output could not be \
written. A file that cannot be read as a report is skipped with a line on stderr.";

const DUMP_STATUS: &str = "Exit status: 0 when every process was dumped; 125 when PID could not be \
(one line says why); with --subprocesses, 3 when PID was dumped but some descendant could not be \
(refused, or the tree cut at 256 processes or by Ctrl-C); a zombie or a process that ended \
meanwhile is listed, not counted.";

#[derive(Debug, Args, Clone)]
pub struct AttachArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    #[command(flatten)]
    pub tracker: TrackerArgs,
    /// Also follow the processes it forks from now on
    #[arg(long)]
    pub follow_forks: bool,
    /// The process to watch
    #[arg(value_name = "PID")]
    pub pid: i32,
}

#[derive(Debug, Args, Clone)]
pub struct DumpArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Do not print the stacks (write them to --output-dir only)
    #[arg(short, long)]
    pub quiet: bool,
    /// Also dump every descendant process (children, grandchildren; at most 256 in all), one
    /// after the other, each under a header naming its pid and parent (with --format json: one
    /// JSON document per line and process)
    #[arg(long)]
    pub subprocesses: bool,
    /// The process to look at
    #[arg(value_name = "PID")]
    pub pid: i32,
}

#[derive(Debug, Args, Clone)]
pub struct CoreArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub tracker: TrackerArgs,
    /// Do not print the report (write it to --output-dir only)
    #[arg(short, long)]
    pub quiet: bool,
    /// The program that dumped core, when it is not at the path the core names
    #[arg(long, value_name = "PROGRAM")]
    pub exe: Option<PathBuf>,
    /// Look up the process's files under DIR (the machine or container the core came from)
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// The core file (plain, .gz or .zst)
    #[arg(value_name = "COREFILE")]
    pub core: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SummaryFormatArg {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct SummarizeArgs {
    /// text, markdown (GitHub's job summary table) or json
    #[arg(long, value_enum, default_value = "text")]
    pub format: SummaryFormatArg,
    /// Report files, or folders searched for *.json reports
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct UploadArgs {
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

/// The modes besides the default one (`crashcatch [OPTIONS] -- CMD`).
#[derive(Debug, Subcommand, Clone)]
pub enum Command {
    /// Run CMD and report any native crash (the same as without `run`)
    #[command(override_usage = "crashcatch run [OPTIONS] -- <CMD>...")]
    Run(RunArgs),
    /// Watch a running process; report a crash; Ctrl-C detaches
    #[command(after_help = ATTACH_STATUS, after_long_help = ATTACH_STATUS)]
    Attach(AttachArgs),
    /// Print every thread's native and Python stack now (on stdout), then detach
    #[command(after_help = DUMP_STATUS, after_long_help = DUMP_STATUS)]
    Dump(DumpArgs),
    /// Print the report of a crash from its core file (kernel core, gcore, systemd-coredump; gzip
    /// or zstd), on stdout
    Core(CoreArgs),
    /// Read the JSON crash and hang reports of several jobs (downloaded CI artifacts) and print one
    /// row per distinct crash (fingerprint): count, tests, signal, faulting function, Python call
    /// site, files
    #[command(after_help = SUMMARIZE_STATUS, after_long_help = SUMMARIZE_STATUS)]
    Summarize(SummarizeArgs),
    /// Send the crash and hang reports found in folders (CI artifacts) to a Sentry-protocol
    /// tracker, one event each; a report sent before (live, or by an earlier upload) is not
    /// counted twice
    Upload(UploadArgs),
}

/// `crashcatch session`: parsed apart from the documented modes (no help, man page or completion
/// shows it).
#[derive(Debug, Parser)]
#[command(name = "crashcatch session", version)]
struct SessionCli {
    #[command(flatten)]
    args: SessionArgs,
}

/// Catch native crashes of Python processes and explain them.
///
/// `crashcatch [OPTIONS] -- CMD [ARGS...]` runs CMD under ptrace and follows every thread, fork
/// and exec; when a traced process is about to die of SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT
/// or SIGSYS, it writes a report (native and Python stacks merged) and then lets the signal act.
/// Its exit status is the command's.
#[derive(Debug, Parser)]
#[command(
    name = "crashcatch",
    version,
    override_usage = "crashcatch [OPTIONS] -- <CMD>...\n       crashcatch <COMMAND> [OPTIONS] ...",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The whole command line's definition (man pages, completions, tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The mode, picked by the first argument: `run` (or none), `attach`, `dump`, `core`,
/// `summarize`, `upload`.
pub enum Mode {
    Run(RunArgs),
    Attach(AttachArgs),
    Dump(DumpArgs),
    Core(CoreArgs),
    Summarize(SummarizeArgs),
    Upload(UploadArgs),
    Session(SessionArgs),
}

/// Parses `args` (the program's name first).
pub fn parse_from(args: impl IntoIterator<Item = OsString>) -> Result<Mode, clap::Error> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "session") {
        args.remove(1);
        return SessionCli::try_parse_from(args).map(|s| Mode::Session(s.args));
    }
    let cli = Cli::try_parse_from(args)?;
    Ok(match cli.command {
        None => Mode::Run(cli.run),
        Some(Command::Run(a)) => Mode::Run(a),
        Some(Command::Attach(a)) => Mode::Attach(a),
        Some(Command::Dump(a)) => Mode::Dump(a),
        Some(Command::Core(a)) => Mode::Core(a),
        Some(Command::Summarize(a)) => Mode::Summarize(a),
        Some(Command::Upload(a)) => Mode::Upload(a),
    })
}

/// Parses the process's arguments.
pub fn parse() -> Result<Mode, clap::Error> {
    parse_from(std::env::args_os())
}

/// What to do with a command line that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--help` or `--version`: printed whole on stdout, exit 0.
    Print(String),
    /// A usage error: this one line on stderr (without `crashcatch: `), exit 2.
    Usage(String),
}

/// The one line a usage error of `args` is told in: clap's message, a tip (the subcommand or
/// option meant, where a command goes), and the usage of the mode it concerns, so `crashcatch
/// dump` says `crashcatch dump [OPTIONS] <PID>`.
pub fn refusal(e: &clap::Error, args: &[OsString]) -> Refusal {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return Refusal::Print(e.render().to_string());
    }
    // Subcommands come first (their options after them), so the mode is the first argument.
    let mut definition = command();
    definition.build();
    let sub = args.get(1).and_then(|a| a.to_str()).and_then(|a| definition.find_subcommand(a)).cloned();
    let program = sub.as_ref().map_or("crashcatch".to_string(), |s| format!("crashcatch {}", s.get_name()));
    let usage = match &sub {
        Some(s) if s.get_name() != "run" => s.clone().render_usage().to_string(),
        Some(_) => "crashcatch run [OPTIONS] -- CMD [ARGS...]".into(),
        None => "crashcatch [OPTIONS] -- CMD [ARGS...]".into(),
    };
    let usage = usage.trim().trim_start_matches("Usage: ").to_string();
    // clap's message: its first paragraph, continuation lines joined (`... not provided: <PID>`).
    let text = e.render().to_string();
    let first: Vec<&str> = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    let mut line = first.join(" ").trim_start_matches("error: ").to_string();
    let mut tips: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        // "to pass '--x' as a value, use '-- --x'": not what a mode's unknown option needs.
        .filter(|t| !t.starts_with("to pass '"))
        .map(str::to_string)
        .collect();
    match e.kind() {
        ErrorKind::MissingRequiredArgument if !sub.as_ref().is_some_and(|s| s.get_name() != "run") => {
            line = "no command given (put it after --)".into()
        }
        ErrorKind::UnknownArgument if sub.is_none() => {
            let word = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(w)) => w.clone(),
                _ => String::new(),
            };
            tips.push(unknown_word_tip(&definition, &word));
        }
        _ => {}
    }
    for t in tips.iter().filter(|t| !t.is_empty()) {
        line.push_str("; ");
        line.push_str(t);
    }
    Refusal::Usage(format!("{line}; usage: {usage} (see '{program} --help')"))
}

/// A word before `--` at the top level: a subcommand misplaced or mistyped, or a command
/// without its `--`.
fn unknown_word_tip(definition: &clap::Command, word: &str) -> String {
    if word.starts_with('-') {
        return String::new();
    }
    let names: Vec<&str> = definition.get_subcommands().map(|s| s.get_name()).collect();
    if names.contains(&word) {
        return format!("'{word}' goes first, its options after it");
    }
    // As clap suggests subcommands (Jaro similarity above 0.7).
    let near = names
        .iter()
        .map(|n| (strsim::jaro(word, n), *n))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match near {
        Some((_, name)) => format!("a similar subcommand exists: '{name}'"),
        None => "to run a command, put it after --: crashcatch [OPTIONS] -- CMD [ARGS...]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Mode, Refusal> {
        let args = std::iter::once("crashcatch").chain(args.iter().copied()).map(OsString::from);
        let args: Vec<OsString> = args.collect();
        parse_from(args.clone()).map_err(|e| refusal(&e, &args))
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(Refusal::Usage(line)) => line,
            Err(Refusal::Print(text)) => panic!("{args:?} printed\n{text}"),
            Ok(_) => panic!("{args:?} parsed"),
        }
    }

    fn help(args: &[&str]) -> String {
        match parse(args) {
            Err(Refusal::Print(text)) => text,
            _ => panic!("{args:?} gave no help"),
        }
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn modes_and_the_default() {
        assert!(matches!(parse(&["--", "python", "x.py"]), Ok(Mode::Run(r)) if r.command == ["python", "x.py"]));
        assert!(
            matches!(parse(&["-q", "--", "dump", "1"]), Ok(Mode::Run(r)) if r.command == ["dump", "1"] && r.watch.quiet)
        );
        assert!(matches!(parse(&["run", "--core", "--", "true"]), Ok(Mode::Run(r)) if r.cores.core));
        assert!(
            matches!(parse(&["attach", "--follow-forks", "12"]), Ok(Mode::Attach(a)) if a.pid == 12 && a.follow_forks)
        );
        assert!(
            matches!(parse(&["dump", "--format", "json", "7"]), Ok(Mode::Dump(d)) if d.pid == 7 && !d.subprocesses)
        );
        assert!(matches!(parse(&["dump", "--subprocesses", "7"]), Ok(Mode::Dump(d)) if d.pid == 7 && d.subprocesses));
        assert!(matches!(parse(&["core", "--sysroot", "/r", "c.core"]), Ok(Mode::Core(c)) if c.sysroot.is_some()));
        assert!(matches!(parse(&["summarize", "a", "b"]), Ok(Mode::Summarize(s)) if s.paths.len() == 2));
        assert!(matches!(
            parse(&["session", "--notify-fd", "3", "--go-fd", "4", "--output-dir", "r", "12"]),
            Ok(Mode::Session(a)) if a.pid == 12 && a.notify_fd == 3 && a.go_fd == 4
        ));
        assert!(
            matches!(parse(&["upload", "--sentry-dsn", "https://k@h/1", "a"]), Ok(Mode::Upload(u)) if u.paths.len() == 1)
        );
    }

    #[test]
    fn usage_errors_name_their_mode() {
        let e = usage_error(&["dump"]);
        assert!(e.contains("<PID>") && e.contains("usage: crashcatch dump [OPTIONS] <PID>"), "{e}");
        assert!(e.contains("(see 'crashcatch dump --help')"), "{e}");
        let e = usage_error(&["core", "--bogus", "x"]);
        assert!(e.contains("'--bogus'") && e.contains("usage: crashcatch core"), "{e}");
        let e = usage_error(&["attach", "abc"]);
        assert!(e.contains("'abc'") && e.contains("usage: crashcatch attach"), "{e}");
        let e = usage_error(&[]);
        assert!(e.starts_with("no command given (put it after --)"), "{e}");
        assert!(e.ends_with("usage: crashcatch [OPTIONS] -- CMD [ARGS...] (see 'crashcatch --help')"), "{e}");
        // Options of one mode are not another's.
        let e = usage_error(&["dump", "--junit-xml", "j.xml", "1"]);
        assert!(e.contains("'--junit-xml'") && e.contains("crashcatch dump"), "{e}");
        let e = usage_error(&["core", "--core-max-mb", "1", "c"]);
        assert!(e.contains("'--core-max-mb'") && e.contains("crashcatch core"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn typos_get_suggestions() {
        let e = usage_error(&["dumpp", "1"]);
        assert!(e.contains("'dumpp'") && e.contains("'dump'"), "{e}");
        let e = usage_error(&["attach", "--follow-fork", "1"]);
        assert!(e.contains("'--follow-forks'"), "{e}");
        // A command without `--`: how to run it.
        let e = usage_error(&["python", "app.py"]);
        assert!(e.contains("'python'") && e.contains("put it after --"), "{e}");
        // Options of a mode given before it.
        let e = usage_error(&["--output-dir", "r", "dump", "1"]);
        assert!(e.contains("'dump' goes first"), "{e}");
    }

    #[test]
    fn each_mode_lists_only_its_options() {
        let dump = help(&["dump", "--help"]);
        let core = help(&["core", "--help"]);
        for (name, text) in [("dump", &dump), ("core", &core)] {
            for absent in ["--junit-xml", "--core-max-mb", "--test-timeout", "--follow-forks", "stderr"] {
                assert!(!text.contains(absent), "{name} --help lists {absent}:\n{text}");
            }
            assert!(text.contains("--output-dir") && text.contains("--format"), "{text}");
            assert!(text.contains(&format!("Usage: crashcatch {name} [OPTIONS]")), "{text}");
        }
        assert!(core.contains("--sysroot") && !dump.contains("--sysroot"));
        // A dump is neither a crash nor a hang: nothing to send to a tracker.
        assert!(core.contains("--sentry-dsn") && !dump.contains("--sentry-dsn"));
        let attach = help(&["attach", "--help"]);
        assert!(attach.contains("--junit-xml") && attach.contains("--follow-forks") && attach.contains("Exit status"));
        assert!(!attach.contains("--core-max-mb"), "{attach}");
        let top = help(&["--help"]);
        assert!(!top.contains("session"), "the plugin's own mode is not for people:\n{top}");
        for sub in ["run", "attach", "dump", "core", "summarize", "upload"] {
            assert!(top.contains(&format!("\n  {sub} ")), "{sub} missing from --help:\n{top}");
        }
    }
}
