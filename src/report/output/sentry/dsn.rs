//! The DSN (`https://KEY@HOST/PROJECT`): where a project's events go and the key that lets them
//! in. The key is a secret of sorts (anyone holding it can send events to the project), so it
//! is never shown: a DSN prints as its address without the key, its errors never quote it, and
//! it travels only in the `X-Sentry-Auth` header, never in a URL.

use std::fmt;

/// What is wrong with a DSN (never quoting it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    #[error("the Sentry DSN is not of the form https://KEY@HOST/PROJECT")]
    Shape,
    #[error("the Sentry DSN's scheme must be http or https")]
    Scheme,
    #[error("the Sentry DSN has no key (https://KEY@HOST/PROJECT)")]
    NoKey,
    #[error("the Sentry DSN's key holds characters a key does not have")]
    BadKey,
    #[error("the Sentry DSN has no host, or a host with characters a host name does not have")]
    BadHost,
    #[error("the Sentry DSN's port is not a number from 1 to 65535")]
    BadPort,
    #[error("the Sentry DSN has no project id at the end of its path")]
    NoProject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed DSN. `Display` and `Debug` show it without its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    pub scheme: Scheme,
    key: String,
    /// The host as written (an IPv6 address in brackets).
    pub host: String,
    pub port: Option<u16>,
    /// The path before the project id, without a trailing slash (`""` or `/sentry`).
    pub path: String,
    pub project: String,
}

impl Dsn {
    /// Parses `SCHEME://KEY[:SECRET]@HOST[:PORT][/PATH]/PROJECT`.
    pub fn parse(dsn: &str) -> Result<Dsn, DsnError> {
        let dsn = dsn.trim();
        let (scheme, rest) = dsn.split_once("://").ok_or(DsnError::Shape)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(DsnError::Scheme),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return Err(DsnError::NoProject),
        };
        let (userinfo, hostport) = authority.rsplit_once('@').ok_or(DsnError::NoKey)?;
        let key = userinfo.split(':').next().unwrap_or("");
        if key.is_empty() {
            return Err(DsnError::NoKey);
        }
        if key.len() > 256 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(DsnError::BadKey);
        }
        let (host, port) = split_host_port(hostport)?;
        let path = path.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
        let (prefix, project) = path.rsplit_once('/').ok_or(DsnError::NoProject)?;
        if project.is_empty()
            || project.len() > 64
            || !project.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(DsnError::NoProject);
        }
        if !prefix.bytes().all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}%".contains(&b)) {
            return Err(DsnError::Shape);
        }
        Ok(Dsn { scheme, key: key.to_string(), host, port, path: prefix.to_string(), project: project.to_string() })
    }

    /// The key, for the `X-Sentry-Auth` header only.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The port connected to.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `SCHEME://HOST[:PORT]`.
    pub fn origin(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme.as_str(), self.host),
            None => format!("{}://{}", self.scheme.as_str(), self.host),
        }
    }

    /// Where envelopes go: `SCHEME://HOST[:PORT][/PATH]/api/PROJECT/envelope/` (no key in it).
    pub fn envelope_url(&self) -> String {
        format!("{}{}/api/{}/envelope/", self.origin(), self.path, self.project)
    }

    /// The `X-Sentry-Auth` header's value.
    pub fn auth_header(&self) -> String {
        format!(
            "Sentry sentry_version=7, sentry_key={}, sentry_client=crashcatch/{}",
            self.key,
            env!("CARGO_PKG_VERSION")
        )
    }

    /// `text` with every occurrence of the key replaced (for messages built from elsewhere).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.key, "***")
    }
}

/// `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), DsnError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']').ok_or(DsnError::BadHost)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(DsnError::BadHost);
        }
        (format!("[{v6}]"), tail.strip_prefix(':'))
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let name_ok = |h: &str| {
        !h.is_empty() && h.len() <= 253 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !host.starts_with('[') && !name_ok(&host) {
        return Err(DsnError::BadHost);
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p > 0).ok_or(DsnError::BadPort)?),
    };
    Ok((host, port))
}

impl fmt::Display for Dsn {
    /// `https://HOST/PROJECT`: the DSN without its key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}/{}", self.origin(), self.path, self.project)
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self}, key hidden)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_forms_trackers_hand_out() {
        // Sentry SaaS, self-hosted Sentry under a path, GlitchTip, Bugsink.
        let d = Dsn::parse(&format!("https://{KEY}@o123.ingest.us.sentry.io/4504")).unwrap();
        assert_eq!(d.envelope_url(), "https://o123.ingest.us.sentry.io/api/4504/envelope/");
        assert_eq!(d.port_or_default(), 443);
        let d = Dsn::parse(&format!("http://{KEY}:oldsecret@sentry.internal:9000/sentry/7")).unwrap();
        assert_eq!(d.envelope_url(), "http://sentry.internal:9000/sentry/api/7/envelope/");
        assert_eq!(d.to_string(), "http://sentry.internal:9000/sentry/7");
        let d = Dsn::parse(&format!("http://{KEY}@127.0.0.1:8000/1")).unwrap();
        assert_eq!(d.envelope_url(), "http://127.0.0.1:8000/api/1/envelope/");
        assert_eq!(d.key(), KEY);
        let d = Dsn::parse(&format!("http://{KEY}@[::1]:8000/1/")).unwrap();
        assert_eq!(d.envelope_url(), "http://[::1]:8000/api/1/envelope/");
    }

    #[test]
    fn errors_and_displays_never_show_the_key() {
        for bad in [
            format!("{KEY}@host/1"),
            format!("ftp://{KEY}@host/1"),
            "https://host/1".to_string(),
            format!("https://{KEY}@host"),
            format!("https://{KEY}@host/"),
            format!("https://{KEY}@ho st/1"),
            format!("https://{KEY}@host:99999/1"),
            format!("https://{KEY}\r\nX: y@host/1"),
            format!("https://{KEY}@host/a b/1"),
        ] {
            let e = Dsn::parse(&bad).expect_err(&bad);
            assert!(!e.to_string().contains(KEY), "{e}");
        }
        let d = Dsn::parse(&format!("https://{KEY}@h/1")).unwrap();
        assert!(!d.to_string().contains(KEY));
        assert!(!format!("{d:?}").contains(KEY));
        assert!(!d.envelope_url().contains(KEY));
        assert!(d.auth_header().contains(KEY));
        assert_eq!(d.redact(&format!("x {KEY} y")), "x *** y");
    }
}
