//! Which proxy a request goes through, as curl picks it from the environment: `https_proxy`
//! (or `HTTPS_PROXY`) for https URLs, `http_proxy` (or `HTTP_PROXY`) for http, `all_proxy`
//! (`ALL_PROXY`) for both, none for a host `no_proxy` (`NO_PROXY`) names. ureq's own choice
//! takes the first of all of them whatever the scheme, so the client sets the proxy itself.
//!
//! `no_proxy` is comma- (or space-) separated: `*` matches every host; `example.com` and
//! `.example.com` match that domain and every name below it; an IP address matches itself and
//! `10.0.0.0/8` or `fd00::/8` a network; `host:port` matches that port only. A proxy URL may
//! hold a password: [`Choice`]'s description shows its scheme, host and port only.

use std::net::IpAddr;

/// The proxy for one URL, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Straight to the server.
    Direct,
    /// Through this proxy URL (as the environment spells it).
    Proxy(String),
}

impl Choice {
    /// `proxy http://proxy.internal:3128`, without any user or password.
    pub fn describe(&self) -> String {
        match self {
            Choice::Direct => "no proxy".into(),
            Choice::Proxy(url) => format!("proxy {}", without_credentials(url)),
        }
    }

    /// The ureq proxy, or why this one cannot be used (its description never shows a password).
    pub fn to_ureq(&self) -> Result<Option<ureq::Proxy>, String> {
        match self {
            Choice::Direct => Ok(None),
            Choice::Proxy(url) => {
                let p = ureq::Proxy::new(url).map_err(|_| format!("{} is not a usable proxy", self.describe()))?;
                if !matches!(p.protocol(), ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https) {
                    return Err(format!("{}: only http and https proxies are supported", self.describe()));
                }
                Ok(Some(p))
            }
        }
    }
}

/// The proxy for a request to `host` (`port`) over `scheme` (`http` or `https`), from an
/// environment lookup.
pub fn choose(scheme: &str, host: &str, port: u16, get: impl Fn(&str) -> Option<String>) -> Choice {
    let nonempty = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(list) = nonempty("no_proxy").or_else(|| nonempty("NO_PROXY")) {
        if bypasses(&list, host, port) {
            return Choice::Direct;
        }
    }
    let names: &[&str] = if scheme.eq_ignore_ascii_case("https") {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    names.iter().find_map(|n| nonempty(n)).map_or(Choice::Direct, Choice::Proxy)
}

/// Whether a `no_proxy` list names `host` (a name or an IP address, brackets allowed).
pub fn bypasses(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    list.split([',', ' ', '\t']).map(str::trim).filter(|e| !e.is_empty()).any(|e| entry_matches(e, &host, port))
}

fn entry_matches(entry: &str, host: &str, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (name, want_port) = split_port(entry);
    if want_port.is_some_and(|p| p != port) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    if let Some((net, bits)) = name.split_once('/') {
        return in_network(host, net, bits);
    }
    if let (Ok(a), Ok(b)) = (name.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        return a == b;
    }
    let name = name.trim_start_matches('*').trim_start_matches('.').trim_end_matches('.');
    !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
}

/// `host:port` (or `[v6]:port`) into the host and the port; an IPv6 address alone keeps its colons.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            return (addr, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(host: &str, net: &str, bits: &str) -> bool {
    let (Ok(host), Ok(net), Ok(bits)) = (host.parse::<IpAddr>(), net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let (h, n, width) = match (host, net) {
        (IpAddr::V4(h), IpAddr::V4(n)) => (u128::from(u32::from(h)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(h), IpAddr::V6(n)) => (u128::from(h), u128::from(n), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift >= 128 || (h >> shift) == (n >> shift)
}

/// `scheme://host:port` of a URL, without `user:password@` and without any path.
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(s) => format!("{s}://{host}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_scheme_picks_the_variable() {
        let vars = [("https_proxy", "http://s:1"), ("HTTP_PROXY", "http://p:2"), ("ALL_PROXY", "http://a:3")];
        assert_eq!(choose("https", "h", 443, env(&vars)), Choice::Proxy("http://s:1".into()));
        assert_eq!(choose("http", "h", 80, env(&vars)), Choice::Proxy("http://p:2".into()));
        assert_eq!(choose("http", "h", 80, env(&[("ALL_PROXY", "http://a:3")])), Choice::Proxy("http://a:3".into()));
        assert_eq!(choose("https", "h", 443, env(&[("http_proxy", "http://p:2")])), Choice::Direct);
        assert_eq!(choose("https", "h", 443, env(&[("HTTPS_PROXY", " ")])), Choice::Direct);
    }

    #[test]
    fn no_proxy_like_curl() {
        let list = "localhost, .internal.example,example.org:8443,10.0.0.0/8,::1,192.168.1.7";
        for (host, port) in [
            ("localhost", 80),
            ("a.internal.example", 443),
            ("internal.example", 443),
            ("example.org", 8443),
            ("10.20.30.40", 80),
            ("[::1]", 9000),
            ("192.168.1.7", 1),
            ("LOCALHOST.", 80),
        ] {
            assert!(bypasses(list, host, port), "{host}:{port}");
        }
        for (host, port) in [("example.org", 443), ("notlocalhost", 80), ("11.0.0.1", 80), ("192.168.1.8", 1)] {
            assert!(!bypasses(list, host, port), "{host}:{port}");
        }
        assert!(bypasses("*", "anything", 1));
        assert!(bypasses("*.corp", "a.corp", 1));
        let vars = [("https_proxy", "http://s:1"), ("NO_PROXY", "127.0.0.1")];
        assert_eq!(choose("https", "127.0.0.1", 9, env(&vars)), Choice::Direct);
    }

    #[test]
    fn descriptions_hide_passwords() {
        let c = Choice::Proxy("http://user:s3cret@proxy.internal:3128/x".into());
        assert_eq!(c.describe(), "proxy http://proxy.internal:3128");
        assert!(!format!("{:?}", c.to_ureq().err()).contains("s3cret"));
        assert!(Choice::Proxy("socks5://user:s3cret@p:1".into()).to_ureq().is_err_and(|e| !e.contains("s3cret")));
    }
}
