//! One envelope POSTed to the tracker, within a deadline: what came back (the status and the
//! rate-limit headers), or why nothing did. Redirects are not followed (the key would go with the
//! request to wherever the redirect points); the body of the answer is not read.

use std::time::Instant;

use super::dsn::Dsn;
use crate::net::proxy::Choice;

/// What came of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer: the status and the rate-limit headers.
    Status { code: u16, retry_after: Option<String>, rate_limits: Option<String> },
    /// No answer by the deadline.
    TimedOut,
    /// Could not reach the tracker (refused, reset, no such host): why, in words. May pass.
    Unreachable(String),
    /// Reached something that will not take an envelope however often asked (a certificate
    /// not trusted, an answer that is not HTTP, a proxy that cannot be used): why, in words.
    Broken(String),
}

/// The client for one DSN: https checked against the system's certificates, the proxy the
/// environment names for its scheme and host, no redirects, statuses returned as answers.
pub fn agent(proxy: Option<ureq::Proxy>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .user_agent(format!("crashcatch/{}", env!("CARGO_PKG_VERSION")))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(proxy)
        .tls_config(crate::net::tls_config())
        .build();
    config.new_agent()
}

/// The proxy for `dsn` from crashcatch's environment.
pub fn proxy_for(dsn: &Dsn) -> Choice {
    let host = dsn.host.trim_start_matches('[').trim_end_matches(']');
    crate::net::proxy::choose(dsn.scheme.as_str(), host, dsn.port_or_default(), |k| std::env::var(k).ok())
}

/// POSTs `body` (an encoded envelope) to the DSN's envelope endpoint, ending by `deadline`.
pub fn post(agent: &ureq::Agent, dsn: &Dsn, body: &[u8], deadline: Instant) -> Answer {
    let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
        return Answer::TimedOut;
    };
    let request = agent
        .post(dsn.envelope_url())
        .header("X-Sentry-Auth", dsn.auth_header())
        .header("Content-Type", "application/x-sentry-envelope")
        .config()
        .timeout_global(Some(left))
        .build();
    match request.send(body) {
        Ok(response) => {
            let header = |name: &str| {
                response.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(4096).collect())
            };
            Answer::Status {
                code: response.status().as_u16(),
                retry_after: header("retry-after"),
                rate_limits: header("x-sentry-rate-limits"),
            }
        }
        Err(ureq::Error::Timeout(_)) => Answer::TimedOut,
        Err(_) if Instant::now() >= deadline => Answer::TimedOut,
        Err(e) if permanent(&e) => Answer::Broken(dsn.redact(&words(&e))),
        Err(e) => Answer::Unreachable(dsn.redact(&words(&e))),
    }
}

/// Failures that asking again would only repeat (TLS, protocol, configuration).
fn permanent(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Protocol(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::BadUri(_)
        | ureq::Error::Http(_) => true,
        _ => false,
    }
}

/// Why a request failed, in words.
fn words(e: &ureq::Error) -> String {
    match e {
        ureq::Error::HostNotFound => "its host name was not found".into(),
        ureq::Error::ConnectionFailed => "the connection failed".into(),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "the connection was refused".into(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                "the connection was closed before an answer".into()
            }
            std::io::ErrorKind::UnexpectedEof => "the connection was closed before an answer".into(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "no answer in time".into(),
            _ => format!("{io}"),
        },
        ureq::Error::Protocol(_) => "its answer was not HTTP".into(),
        ureq::Error::Tls(why) => format!("TLS failed: {why}"),
        ureq::Error::Rustls(err) => format!("TLS failed: {err}"),
        ureq::Error::InvalidProxyUrl => "the proxy address is not usable".into(),
        other => other.to_string(),
    }
}
