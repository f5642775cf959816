//! GitHub Actions: an `::error` workflow command per crash, pointing at the user's Python line.

use std::path::{Path, PathBuf};

use super::escape::github::{data, property};
use super::summary::{one_line, python_site};
use super::Render;
use crate::report::model::Crash;

/// The annotation renderer. GitHub places annotations by paths relative to the checkout: paths
/// under `workspace` (GITHUB_WORKSPACE) are made relative to it, in the location and in the
/// message.
#[derive(Debug, Clone, Default)]
pub struct GithubAnnotation {
    /// GITHUB_WORKSPACE: paths under it are shown relative to it.
    pub workspace: Option<PathBuf>,
}

impl Render for GithubAnnotation {
    fn render(&self, c: &Crash) -> String {
        let workspace = self.workspace.as_deref();
        let mut msg = one_line(c);
        if let Some(p) = python_site(c) {
            let rel = relative_to(&p.file, workspace);
            if rel != p.file {
                msg = msg.replace(&format!("; Python {}:", p.file), &format!("; Python {rel}:"));
            }
        }
        let crash = match &c.fingerprint {
            Some(f) => format!("crash {f}"),
            None => "crash".to_string(),
        };
        let title = match &c.process.test {
            Some(t) => format!("{crash} in {}", t.rsplit_once(" (").map_or(t.as_str(), |x| x.0)),
            None => format!("{crash} in pid {}", c.process.pid),
        };
        let loc = match python_site(c) {
            Some(p) if p.line.is_some() && !p.file.starts_with('<') => {
                let file = relative_to(&p.file, workspace);
                format!("file={},line={},", property(file), p.line.unwrap_or(1))
            }
            _ => String::new(),
        };
        format!("::error {loc}title={}::{}\n", property(&title), data(&msg))
    }
}

/// `path` relative to `base` when it lies under it.
fn relative_to<'a>(path: &'a str, base: Option<&Path>) -> &'a str {
    base.and_then(|b| Path::new(path).strip_prefix(b).ok())
        .and_then(|r| r.to_str())
        .filter(|r| !r.is_empty())
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CrashKind, ProcessInfo, PythonFrame, SignalReport, SCHEMA_VERSION};

    fn crash_in_ctypes() -> Crash {
        let frame = |file: &str, function: &str, line| PythonFrame {
            file: file.into(),
            function: function.into(),
            line: Some(line),
            ..Default::default()
        };
        Crash {
            schema_version: SCHEMA_VERSION,
            kind: CrashKind::Crash,
            fingerprint: None,
            tool: Default::default(),
            time: String::new(),
            process: ProcessInfo { pid: 7, test: Some("tests/test_a.py::test_b (call)".into()), ..Default::default() },
            signal: SignalReport { number: 11, name: "SIGSEGV".into(), ..Default::default() },
            classification: None,
            culprit: None,
            python_call_site: Some(frame("/usr/lib/python3.11/ctypes/__init__.py", "string_at", 519)),
            python_user_frame: Some(frame("/ws/repo/tests/test_a.py", "helper", 11)),
            diagnosis: None,
            crashed_tid: 7,
            test_timeout: None,
            also_faulting: vec![],
            threads: vec![],
            python: None,
            modules: vec![],
            notes: vec![],
            timings: Default::default(),
            files: vec![],
        }
    }

    fn annotation(c: &Crash, workspace: Option<&str>) -> String {
        GithubAnnotation { workspace: workspace.map(PathBuf::from) }.render(c)
    }

    #[test]
    fn annotation_points_at_the_users_line() {
        let c = crash_in_ctypes();
        assert_eq!(
            annotation(&c, Some("/ws/repo")),
            "::error file=tests/test_a.py,line=11,title=crash in tests/test_a.py%3A%3Atest_b::SIGSEGV; Python tests/test_a.py:11 in helper\n"
        );
        // Outside the workspace (or without one): the full path, escaped.
        // The fingerprint in the title and the message.
        let mut f = c.clone();
        f.fingerprint = Some("0123456789ab".into());
        assert_eq!(
            annotation(&f, Some("/ws/repo")),
            "::error file=tests/test_a.py,line=11,title=crash 0123456789ab in tests/test_a.py%3A%3Atest_b::SIGSEGV; Python tests/test_a.py:11 in helper; fingerprint 0123456789ab\n"
        );
        assert!(annotation(&c, Some("/elsewhere")).starts_with("::error file=/ws/repo/tests/test_a.py,line=11,"));
        assert!(annotation(&c, None).starts_with("::error file=/ws/repo/tests/test_a.py,line=11,"));
        // No user frame: the innermost frame.
        let mut c = c;
        c.python_user_frame = None;
        assert!(annotation(&c, None).starts_with("::error file=/usr/lib/python3.11/ctypes/__init__.py,line=519,"));
        assert_eq!(one_line(&c), "SIGSEGV; Python /usr/lib/python3.11/ctypes/__init__.py:519 in string_at");
    }
}
