//! Where an event says it comes from: the CI provider, job, run and commit, the release, the
//! environment and the machine. Read from a lookup: crashcatch's own environment (the runner's)
//! when it sends live, else the variables the report recorded from the crashed process's
//! environment (`crashcatch upload` of artifacts collected by another job). Every value is
//! untrusted text: tags are cut to what trackers accept, with no line breaks.

use std::collections::BTreeMap;

use crate::report::model::Crash;
use crate::report::render::escape::is_hostile;

/// The variables read, each with the tag it becomes, per CI provider; the first variable set
/// wins. `ci.commit` also gives the release when `CRASHCATCH_RELEASE` is not set.
struct Provider {
    /// The tag `ci`'s value.
    name: &'static str,
    /// The variable that says this provider runs the job, and the value it must have (any when empty).
    detect: (&'static str, &'static str),
    tags: &'static [(&'static str, &'static [&'static str])],
    /// The runner's name (the event's `server_name`).
    runner: &'static [&'static str],
}

const PROVIDERS: &[Provider] = &[
    Provider {
        name: "github",
        detect: ("GITHUB_ACTIONS", "true"),
        tags: &[
            ("ci.job", &["GITHUB_JOB"]),
            ("ci.run", &["GITHUB_RUN_ID"]),
            ("ci.run_attempt", &["GITHUB_RUN_ATTEMPT"]),
            ("ci.commit", &["GITHUB_SHA"]),
            ("ci.repository", &["GITHUB_REPOSITORY"]),
            ("ci.workflow", &["GITHUB_WORKFLOW"]),
            ("ci.ref", &["GITHUB_REF_NAME"]),
            ("ci.runner_os", &["RUNNER_OS"]),
        ],
        runner: &["RUNNER_NAME"],
    },
    Provider {
        name: "gitlab",
        detect: ("GITLAB_CI", "true"),
        tags: &[
            ("ci.job", &["CI_JOB_NAME"]),
            ("ci.job_id", &["CI_JOB_ID"]),
            ("ci.run", &["CI_PIPELINE_ID"]),
            ("ci.commit", &["CI_COMMIT_SHA"]),
            ("ci.repository", &["CI_PROJECT_PATH"]),
            ("ci.ref", &["CI_COMMIT_REF_NAME"]),
        ],
        runner: &["CI_RUNNER_DESCRIPTION"],
    },
    Provider {
        name: "buildkite",
        detect: ("BUILDKITE", "true"),
        tags: &[
            ("ci.job", &["BUILDKITE_LABEL"]),
            ("ci.run", &["BUILDKITE_BUILD_NUMBER"]),
            ("ci.commit", &["BUILDKITE_COMMIT"]),
            ("ci.repository", &["BUILDKITE_PIPELINE_SLUG"]),
            ("ci.ref", &["BUILDKITE_BRANCH"]),
        ],
        runner: &["BUILDKITE_AGENT_NAME"],
    },
    Provider {
        name: "circleci",
        detect: ("CIRCLECI", "true"),
        tags: &[
            ("ci.job", &["CIRCLE_JOB"]),
            ("ci.run", &["CIRCLE_BUILD_NUM"]),
            ("ci.commit", &["CIRCLE_SHA1"]),
            ("ci.repository", &["CIRCLE_PROJECT_REPONAME"]),
            ("ci.ref", &["CIRCLE_BRANCH"]),
        ],
        runner: &[],
    },
    Provider {
        name: "jenkins",
        detect: ("JENKINS_URL", ""),
        tags: &[
            ("ci.job", &["JOB_NAME"]),
            ("ci.run", &["BUILD_NUMBER"]),
            ("ci.commit", &["GIT_COMMIT"]),
            ("ci.ref", &["GIT_BRANCH"]),
        ],
        runner: &["NODE_NAME"],
    },
    // Any other CI that follows the common convention of CI=true (or 1).
    Provider { name: "ci", detect: ("CI", ""), tags: &[], runner: &[] },
];

/// Every variable [`Context`] reads (crashcatch's own environment is snapshotted to these).
pub fn variables() -> impl Iterator<Item = &'static str> {
    PROVIDERS
        .iter()
        .flat_map(|p| {
            std::iter::once(p.detect.0)
                .chain(p.tags.iter().flat_map(|(_, vars)| vars.iter().copied()))
                .chain(p.runner.iter().copied())
        })
        .chain(["GITHUB_SERVER_URL", "CI_JOB_URL", RELEASE, ENVIRONMENT])
}

/// `CRASHCATCH_RELEASE`: the event's release (else the CI's commit).
pub const RELEASE: &str = "CRASHCATCH_RELEASE";
/// `CRASHCATCH_ENVIRONMENT`: the event's environment (else `ci` in CI, else none).
pub const ENVIRONMENT: &str = "CRASHCATCH_ENVIRONMENT";

/// The longest tag value trackers keep.
pub const MAX_TAG: usize = 200;

/// What is known about the run an event comes from, besides the report.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Variables of the sender's own environment (only those of [`variables`]); they win over the report's.
    pub env: BTreeMap<String, String>,
    /// Whether the report's own recorded environment may fill in what `env` lacks.
    pub report_env: bool,
    /// The machine's name, when sending live.
    pub host: Option<String>,
    /// `uname -r`, when sending live.
    pub kernel: Option<String>,
}

/// The facts of one event's origin, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    pub tags: BTreeMap<String, String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub server_name: Option<String>,
    /// A link to the CI job or run, when the provider gives one.
    pub ci_url: Option<String>,
}

impl Context {
    /// A snapshot of `get` (crashcatch's environment) for live sending.
    pub fn live(get: impl Fn(&str) -> Option<String>, host: Option<String>, kernel: Option<String>) -> Context {
        let env = variables().filter_map(|k| get(k).map(|v| (k.to_string(), v))).collect();
        Context { env, report_env: true, host, kernel }
    }

    /// For `crashcatch upload`: the uploader's explicit `CRASHCATCH_RELEASE` and
    /// `CRASHCATCH_ENVIRONMENT` only; the CI facts are the report's own.
    pub fn upload(get: impl Fn(&str) -> Option<String>) -> Context {
        let env = [RELEASE, ENVIRONMENT].iter().filter_map(|k| get(k).map(|v| (k.to_string(), v))).collect();
        Context { env, report_env: true, host: None, kernel: None }
    }

    /// The origin of `crash`'s event.
    pub fn origin(&self, crash: &Crash) -> Origin {
        let get = |k: &str| -> Option<String> {
            let own = self.env.get(k).cloned();
            let recorded = || {
                self.report_env
                    .then(|| crash.process.environment.iter().find(|v| v.name == k).map(|v| v.value.clone()))
                    .flatten()
            };
            own.or_else(recorded).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
        };
        let mut o = Origin::default();
        if let Some(p) = PROVIDERS.iter().find(|p| detected(p, &get)) {
            o.tags.insert("ci".into(), p.name.into());
            for (tag, vars) in p.tags {
                if let Some(v) = vars.iter().find_map(|v| get(v)).and_then(|v| tag_value(&v)) {
                    o.tags.insert((*tag).into(), v);
                }
            }
            o.server_name = p.runner.iter().find_map(|v| get(v)).and_then(|v| tag_value(&v));
            o.ci_url = match p.name {
                "github" => match (get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
                    (Some(s), Some(r), Some(id)) => Some(format!("{}/{r}/actions/runs/{id}", s.trim_end_matches('/'))),
                    _ => None,
                },
                "gitlab" => get("CI_JOB_URL"),
                _ => None,
            };
            o.environment = Some("ci".into());
        }
        o.release = get(RELEASE).or_else(|| o.tags.get("ci.commit").cloned()).filter(|r| valid_release(r));
        if let Some(e) = get(ENVIRONMENT) {
            o.environment = valid_environment(&e).then_some(e);
        }
        if o.server_name.is_none() {
            o.server_name = self.host.as_deref().and_then(tag_value);
        }
        o
    }
}

fn detected(p: &Provider, get: &impl Fn(&str) -> Option<String>) -> bool {
    match (get(p.detect.0), p.detect.1) {
        (None, _) => false,
        (Some(v), "") => !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no"),
        (Some(v), want) => v.eq_ignore_ascii_case(want),
    }
}

/// A tag value as trackers take it: one line, at most [`MAX_TAG`] characters, with what would
/// act on a reader (controls, separators, bidirectional overrides) made spaces; `None` when empty.
pub fn tag_value(v: &str) -> Option<String> {
    let one_line: String = v.chars().map(|c| if c.is_control() || is_hostile(c) { ' ' } else { c }).collect();
    let t = one_line.trim();
    if t.is_empty() {
        return None;
    }
    Some(match t.char_indices().nth(MAX_TAG) {
        Some((i, _)) => t[..i].to_string(),
        None => t.to_string(),
    })
}

/// A release name Sentry accepts: not empty, at most 200 characters, not `.`, `..` or
/// `latest`, no slash, backslash or control character (Relay drops others with an error).
pub fn valid_release(r: &str) -> bool {
    !r.is_empty()
        && r.chars().count() <= 200
        && r.trim() == r
        && !matches!(r, "." | "..")
        && !r.eq_ignore_ascii_case("latest")
        && !r.chars().any(|c| c.is_control() || c == '/' || c == '\\')
}

/// An environment name Sentry accepts: at most 64 characters, no slash, no control character.
pub fn valid_environment(e: &str) -> bool {
    !e.is_empty() && e.chars().count() <= 64 && e.trim() == e && !e.chars().any(|c| c.is_control() || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{CrashKind, EnvVar, ProcessInfo, SignalReport};

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn crash(vars: &[(&str, &str)]) -> Crash {
        let environment = vars.iter().map(|(n, v)| EnvVar { name: n.to_string(), value: v.to_string() }).collect();
        let process = ProcessInfo { pid: 1, environment, ..Default::default() };
        Crash::minimal(CrashKind::Crash, "t".into(), process, SignalReport::default(), 1, String::new())
    }

    #[test]
    fn github_actions() {
        let vars = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_JOB", "test"),
            ("GITHUB_RUN_ID", "123"),
            ("GITHUB_SHA", "0123abcd"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("RUNNER_NAME", "runner 7"),
            ("HOME", "/root"),
        ];
        let ctx = Context::live(env(&vars), Some("box".into()), None);
        assert!(!ctx.env.contains_key("HOME"), "only the variables it reads");
        let o = ctx.origin(&crash(&[]));
        assert_eq!(o.tags["ci"], "github");
        assert_eq!(o.tags["ci.job"], "test");
        assert_eq!(o.tags["ci.run"], "123");
        assert_eq!(o.release.as_deref(), Some("0123abcd"));
        assert_eq!(o.environment.as_deref(), Some("ci"));
        assert_eq!(o.server_name.as_deref(), Some("runner 7"));
        assert_eq!(o.ci_url.as_deref(), Some("https://github.com/o/r/actions/runs/123"));
    }

    #[test]
    fn gitlab_from_the_report_and_explicit_release() {
        let ctx = Context::upload(env(&[("CRASHCATCH_RELEASE", "myapp@1.2.3"), ("GITHUB_SHA", "ignored")]));
        let o = ctx.origin(&crash(&[("GITLAB_CI", "true"), ("CI_JOB_NAME", "py311"), ("CI_COMMIT_SHA", "beef")]));
        assert_eq!(o.tags["ci"], "gitlab");
        assert_eq!(o.tags["ci.job"], "py311");
        assert_eq!(o.release.as_deref(), Some("myapp@1.2.3"));
        assert_eq!(o.server_name, None);
    }

    #[test]
    fn generic_ci_and_no_ci() {
        let o = Context::live(env(&[("CI", "1")]), Some("h".into()), None).origin(&crash(&[]));
        assert_eq!(o.tags["ci"], "ci");
        assert_eq!(o.environment.as_deref(), Some("ci"));
        assert_eq!(o.server_name.as_deref(), Some("h"));
        let o = Context::live(env(&[("CI", "false")]), None, None).origin(&crash(&[]));
        assert!(o.tags.is_empty());
        assert_eq!(o.environment, None);
        let o = Context::live(env(&[("CRASHCATCH_ENVIRONMENT", "nightly")]), None, None).origin(&crash(&[]));
        assert_eq!(o.environment.as_deref(), Some("nightly"));
    }

    #[test]
    fn reports_record_every_variable_read() {
        use crate::capture::environment::{CI_ALLOW, ENV_ALLOW};
        for v in variables().filter(|v| !v.starts_with("CRASHCATCH_")) {
            assert!(CI_ALLOW.contains(&v) || ENV_ALLOW.contains(&v), "{v} is not recorded in reports");
        }
    }

    #[test]
    fn values_trackers_accept() {
        assert_eq!(tag_value(" a\nb\x1b "), Some("a b".into()));
        assert_eq!(tag_value("x\u{202e}y\u{9b}z"), Some("x y z".into()));
        assert_eq!(tag_value(&"é".repeat(300)).map(|v| v.chars().count()), Some(MAX_TAG));
        assert_eq!(tag_value("\n"), None);
        for ok in ["1.2.3", "myapp@1.0+abc", "0123abcd"] {
            assert!(valid_release(ok), "{ok}");
        }
        for bad in ["", ".", "..", "latest", "a/b", "a\\b", "a\nb", " x", &"x".repeat(201)] {
            assert!(!valid_release(bad), "{bad}");
        }
        assert!(!valid_environment("a/b"));
    }
}
