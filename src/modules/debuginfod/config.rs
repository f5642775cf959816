//! The debuginfod client's settings, read once from crashcatch's own environment with elfutils'
//! meanings: `DEBUGINFOD_URLS` (space-separated servers), `DEBUGINFOD_CACHE_PATH` (else
//! `$HOME/.debuginfod_client_cache` when it exists, else `$XDG_CACHE_HOME/debuginfod_client`,
//! else `$HOME/.cache/debuginfod_client`), `DEBUGINFOD_TIMEOUT`, `DEBUGINFOD_MAXTIME`,
//! `DEBUGINFOD_MAXSIZE`; plus crashcatch's own total time budget.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// At most this many servers are asked (the rest of `DEBUGINFOD_URLS` is left out with a note).
pub(crate) const MAX_SERVERS: usize = 8;
/// The largest debug file accepted when `DEBUGINFOD_MAXSIZE` does not ask for less: a body
/// past it is cut off and dropped (streamed to disk, never held in memory).
pub(crate) const DEFAULT_MAX_SIZE: u64 = 512 << 20;
/// The total budget when `--debuginfod-timeout` is not given.
pub(crate) const DEFAULT_BUDGET: Duration = Duration::from_secs(5);

/// Where and how to fetch missing debug files (`DEBUGINFOD_URLS` and the cache elfutils uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebuginfodConfig {
    /// Server base URLs, each without a trailing slash (`https://debuginfod.debian.net`).
    pub servers: Vec<String>,
    /// Entries of `DEBUGINFOD_URLS` not used, and why (for the report's notes).
    pub ignored: Vec<String>,
    /// The cache folder shared with elfutils (gdb, eu-stack, debuginfod-find).
    pub cache: Option<PathBuf>,
    /// Everything, all modules and servers together, ends by then.
    pub budget: Duration,
    /// `DEBUGINFOD_TIMEOUT`: how long connecting and the first answer of one server may take.
    pub connect_timeout: Option<Duration>,
    /// `DEBUGINFOD_MAXTIME`: how long one download may take in all.
    pub max_time: Option<Duration>,
    /// `DEBUGINFOD_MAXSIZE` when set (also sent to the server), else `DEFAULT_MAX_SIZE`.
    pub max_size: u64,
    /// Whether `DEBUGINFOD_MAXSIZE` was given (then sent as `X-DEBUGINFOD-MAXSIZE`).
    pub max_size_requested: bool,
}

impl DebuginfodConfig {
    /// The settings from an environment lookup (`std::env::var_os` in the binary).
    pub(crate) fn from_env(get: impl Fn(&str) -> Option<String>, budget: Duration) -> DebuginfodConfig {
        let (servers, ignored) = parse_urls(get("DEBUGINFOD_URLS").as_deref().unwrap_or(""));
        let seconds = |name: &str| {
            get(name).and_then(|v| v.trim().parse::<u64>().ok()).filter(|&s| s > 0).map(Duration::from_secs)
        };
        let size = get("DEBUGINFOD_MAXSIZE").and_then(|v| v.trim().parse::<u64>().ok()).filter(|&s| s > 0);
        DebuginfodConfig {
            servers,
            ignored,
            cache: cache_root(&get, |p| p.exists()),
            budget,
            connect_timeout: seconds("DEBUGINFOD_TIMEOUT"),
            max_time: seconds("DEBUGINFOD_MAXTIME"),
            max_size: size.map_or(DEFAULT_MAX_SIZE, |s| s.min(DEFAULT_MAX_SIZE)),
            max_size_requested: size.is_some(),
        }
    }

    /// Nothing is fetched (nor is the cache read) without a server or without a budget.
    pub fn enabled(&self) -> bool {
        !self.servers.is_empty() && !self.budget.is_zero() && self.cache.is_some()
    }
}

/// `DEBUGINFOD_URLS`: servers separated by spaces (any whitespace here), duplicates once.
/// Only http and https are spoken; other entries are returned as ignored, with the reason.
pub(crate) fn parse_urls(value: &str) -> (Vec<String>, Vec<String>) {
    let mut servers: Vec<String> = Vec::new();
    let mut ignored = Vec::new();
    for url in value.split_whitespace() {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            ignored.push(format!("{url} (only http:// and https:// servers are asked)"));
            continue;
        }
        let base = url.trim_end_matches('/').to_string();
        if servers.contains(&base) {
            continue;
        }
        if servers.len() == MAX_SERVERS {
            ignored.push(format!("{url} (at most {MAX_SERVERS} servers are asked)"));
            continue;
        }
        servers.push(base);
    }
    (servers, ignored)
}

/// The cache folder, as elfutils' client picks it.
pub(crate) fn cache_root(get: &impl Fn(&str) -> Option<String>, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let nonempty = |name: &str| get(name).filter(|v| !v.is_empty());
    if let Some(p) = nonempty("DEBUGINFOD_CACHE_PATH") {
        return Some(PathBuf::from(p));
    }
    let home = PathBuf::from(nonempty("HOME").unwrap_or_else(|| "/".into()));
    let legacy = home.join(".debuginfod_client_cache");
    if exists(&legacy) {
        return Some(legacy);
    }
    let xdg = nonempty("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".cache"));
    Some(xdg.join("debuginfod_client"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn urls_are_space_separated_deduplicated_and_http_only() {
        let (s, ign) = parse_urls("  https://a.example/ http://b:8002  https://a.example file:///srv ftp://x ");
        assert_eq!(s, ["https://a.example", "http://b:8002"]);
        assert_eq!(ign.len(), 2, "{ign:?}");
        assert!(ign[0].starts_with("file:///srv"));
        let (s, _) = parse_urls("");
        assert!(s.is_empty());
    }

    #[test]
    fn at_most_max_servers() {
        let many: Vec<String> = (0..MAX_SERVERS + 3).map(|i| format!("http://h{i}")).collect();
        let (s, ign) = parse_urls(&many.join(" "));
        assert_eq!(s.len(), MAX_SERVERS);
        assert_eq!(ign.len(), 3);
    }

    #[test]
    fn cache_root_follows_elfutils_order() {
        let none = |_: &Path| false;
        let r = cache_root(&env(&[("DEBUGINFOD_CACHE_PATH", "/c"), ("HOME", "/h")]), none);
        assert_eq!(r, Some(PathBuf::from("/c")));
        let r = cache_root(&env(&[("DEBUGINFOD_CACHE_PATH", ""), ("HOME", "/h")]), none);
        assert_eq!(r, Some(PathBuf::from("/h/.cache/debuginfod_client")));
        let r = cache_root(&env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]), none);
        assert_eq!(r, Some(PathBuf::from("/x/debuginfod_client")));
        let legacy = |p: &Path| p == Path::new("/h/.debuginfod_client_cache");
        let r = cache_root(&env(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]), legacy);
        assert_eq!(r, Some(PathBuf::from("/h/.debuginfod_client_cache")));
        let r = cache_root(&env(&[]), none);
        assert_eq!(r, Some(PathBuf::from("/.cache/debuginfod_client")));
    }

    #[test]
    fn limits_from_environment() {
        let vars = [
            ("DEBUGINFOD_URLS", "http://s"),
            ("DEBUGINFOD_TIMEOUT", "7"),
            ("DEBUGINFOD_MAXTIME", "x"),
            ("DEBUGINFOD_MAXSIZE", "1000"),
            ("DEBUGINFOD_CACHE_PATH", "/c"),
        ];
        let c = DebuginfodConfig::from_env(env(&vars), Duration::from_secs(3));
        assert!(c.enabled());
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(c.max_time, None);
        assert_eq!((c.max_size, c.max_size_requested), (1000, true));
        let c = DebuginfodConfig::from_env(env(&[("DEBUGINFOD_URLS", "http://s")]), Duration::ZERO);
        assert!(!c.enabled(), "a zero budget disables");
        let c = DebuginfodConfig::from_env(env(&[("DEBUGINFOD_URLS", " ")]), Duration::from_secs(3));
        assert!(!c.enabled(), "no server, nothing fetched");
        assert_eq!(c.max_size, DEFAULT_MAX_SIZE);
    }
}
