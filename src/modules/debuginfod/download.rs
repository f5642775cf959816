//! One request to one server: `GET <server>/buildid/<hex>/debuginfo`, the body streamed to a
//! temporary file in the cache entry's folder (never held in memory), cut off past the size
//! cap or at the deadline, verified, then renamed into place.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::cache::Entry;
use super::config::Config;
use super::verify::verify;

/// What came of asking one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The verified file is in the cache: its size, and how long it took.
    Fetched { bytes: u64, elapsed: Duration },
    /// HTTP 404: the server does not have it.
    NotFound,
    /// Larger than the cap (HTTP 406 to `X-DEBUGINFOD-MAXSIZE`, a Content-Length or the body).
    TooLarge,
    /// A file came, but not the one asked for (not ELF, another build-id): why.
    Rejected(String),
    /// Anything else that went wrong: why.
    Failed(String),
    /// No (complete) answer before the deadline.
    TimedOut,
    /// Another server's copy of the same file was kept first.
    Superseded,
}

/// One request's inputs.
pub struct Request<'a> {
    pub server: &'a str,
    pub hex: &'a str,
    pub build_id: &'a [u8],
    pub entry: &'a Entry,
    pub deadline: Instant,
    pub config: &'a Config,
    /// Set by the first server whose file was kept: the others stop.
    pub done: &'a AtomicBool,
}

/// The User-Agent sent, in the form elfutils' client uses (`name/version,os/arch`).
fn user_agent() -> String {
    format!("crashcatch/{},Linux/{}", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH)
}

/// The agent shared by every request of one report (it pools connections per server).
/// https servers are checked against the system's certificate store, as curl (elfutils) does,
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` included; with no store on the machine (a bare
/// container), against Mozilla's roots built in.
pub fn agent(https: bool) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder().user_agent(user_agent()).max_redirects(5);
    if https {
        config = config.tls_config(crate::net::tls_config());
    }
    config.build().new_agent()
}

pub fn url(server: &str, hex: &str) -> String {
    format!("{server}/buildid/{hex}/debuginfo")
}

/// Asks one server, streaming a success into the cache.
pub fn fetch(agent: &ureq::Agent, r: &Request<'_>) -> Attempt {
    let start = Instant::now();
    let Some(remaining) = r.deadline.checked_duration_since(start).filter(|d| !d.is_zero()) else {
        return Attempt::TimedOut;
    };
    let total = r.config.max_time.map_or(remaining, |m| m.min(remaining));
    let first_answer = r.config.connect_timeout.map(|t| t.min(total));
    let mut req = agent
        .get(url(r.server, r.hex))
        .config()
        .timeout_global(Some(total))
        .timeout_connect(first_answer)
        .timeout_recv_response(first_answer)
        .build();
    if r.config.max_size_requested {
        req = req.header("X-DEBUGINFOD-MAXSIZE", r.config.max_size.to_string());
    }
    let response = match req.call() {
        Ok(resp) => resp,
        Err(ureq::Error::StatusCode(404)) => return Attempt::NotFound,
        Err(ureq::Error::StatusCode(406)) => return Attempt::TooLarge,
        Err(ureq::Error::StatusCode(code)) => return Attempt::Failed(format!("HTTP status {code}")),
        Err(ureq::Error::Timeout(_)) => return Attempt::TimedOut,
        Err(_) if Instant::now() >= r.deadline => return Attempt::TimedOut,
        Err(e) => return Attempt::Failed(e.to_string()),
    };
    if response.status().as_u16() != 200 {
        return Attempt::Failed(format!("HTTP status {}", response.status().as_u16()));
    }
    let length = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if length.is_some_and(|n| n > r.config.max_size) {
        return Attempt::TooLarge;
    }
    let dir = match r.entry.prepare() {
        Ok(d) => d,
        Err(why) => return Attempt::Failed(why.to_string()),
    };
    let (tmp, mut file) = match r.entry.temp(&dir) {
        Ok(t) => t,
        Err(e) => return Attempt::Failed(format!("cannot create a file in {}: {e}", r.entry.dir.display())),
    };
    let attempt = fill(&mut file, &tmp, &dir, response, r, start);
    if !matches!(attempt, Attempt::Fetched { .. }) {
        r.entry.discard(&dir, &tmp);
    }
    attempt
}

/// Downloads the body into the temporary file `tmp`, verifies it and puts it in place.
fn fill(
    file: &mut std::fs::File,
    tmp: &str,
    dir: &crate::door::OutDir,
    response: ureq::http::Response<ureq::Body>,
    r: &Request<'_>,
    start: Instant,
) -> Attempt {
    let mut body = response.into_body().into_reader();
    let bytes = match copy_capped(&mut body, file, r) {
        Ok(n) => n,
        Err(a) => return a,
    };
    if let Err(why) = verify(file, &dir.path_of(tmp), r.build_id) {
        return Attempt::Rejected(why.to_string());
    }
    if r.done.swap(true, Ordering::AcqRel) {
        return Attempt::Superseded;
    }
    match r.entry.keep(dir, tmp, file) {
        Ok(()) => Attempt::Fetched { bytes, elapsed: start.elapsed() },
        Err(e) => Attempt::Failed(format!("cannot write {}: {e}", r.entry.file.display())),
    }
}

/// Copies the body to the file; stops past the cap, at the deadline, or when another server
/// already delivered.
fn copy_capped(body: &mut impl Read, file: &mut std::fs::File, r: &Request<'_>) -> Result<u64, Attempt> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        if r.done.load(Ordering::Acquire) {
            return Err(Attempt::Superseded);
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) if Instant::now() >= r.deadline => return Err(Attempt::TimedOut),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(Attempt::TimedOut),
            Err(e) => return Err(Attempt::Failed(format!("the download broke off: {e}"))),
        };
        total += n as u64;
        if total > r.config.max_size {
            return Err(Attempt::TooLarge);
        }
        if let Err(e) = file.write_all(&buf[..n]) {
            return Err(Attempt::Failed(format!("cannot write the download: {e}")));
        }
    }
    file.flush().map_err(|e| Attempt::Failed(format!("cannot write the download: {e}")))?;
    Ok(total)
}
