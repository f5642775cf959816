//! Crash trackers for the tests of `--sentry-dsn`: a small HTTP server on 127.0.0.1 that answers
//! as told (takes envelopes, never answers, trickles, fails, rate-limits, talks garbage, or acts
//! as a CONNECT proxy in front of itself) and keeps every request; envelopes parsed back into
//! their items; and a real Bugsink ([`bugsink`]).

#![allow(dead_code)]

pub mod bugsink;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How the fake tracker answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 `{"id": ...}`, as Sentry does.
    Accept,
    /// Reads the request, then says nothing and keeps the connection open.
    Silent,
    /// Starts an answer and sends one byte of it every 200 ms, for ever.
    Trickle,
    /// Answers with this status (and no rate-limit header).
    Status(u16),
    /// 429 with `Retry-After: <seconds>` to the first `n` requests, then 200.
    RateLimited { retry_after: u32, n: usize },
    /// Random bytes, then closes.
    Garbage,
    /// A 302 to another address.
    Redirect,
}

/// One request the tracker received.
#[derive(Debug, Clone)]
pub struct Request {
    pub request_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The `CONNECT host:port` it came through, when it came through the proxy.
    pub via_proxy: Option<String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A fake tracker on 127.0.0.1; it runs until the test process ends.
pub struct Fake {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

/// A key no test output may contain.
pub const KEY: &str = "5ecre7deadbeef5ecre7deadbeef0042";

impl Fake {
    pub fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (b, seen) = (behaviour.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, b, seen));
            }
        });
        Fake { port, requests }
    }

    /// `http://KEY@127.0.0.1:PORT/42`.
    pub fn dsn(&self) -> String {
        format!("http://{KEY}@127.0.0.1:{}/42", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A port nothing listens on (bound, then closed): connections to it are refused.
pub fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn serve(stream: TcpStream, behaviour: Behaviour, seen: Arc<Mutex<Vec<Request>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut out = stream;
    let mut via_proxy = None;
    loop {
        let Some(mut req) = read_request(&mut reader) else { return };
        if let Some(target) = req.request_line.strip_prefix("CONNECT ") {
            via_proxy = Some(target.split(' ').next().unwrap_or("").to_string());
            let _ = out.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            continue;
        }
        req.via_proxy = via_proxy.clone();
        let n = {
            let mut all = seen.lock().unwrap();
            all.push(req);
            all.len()
        };
        let answer: Vec<u8> = match &behaviour {
            Behaviour::Accept => ok(),
            Behaviour::RateLimited { retry_after, n: limited } if n <= *limited => {
                format!("HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after}\r\nContent-Length: 0\r\n\r\n")
                    .into_bytes()
            }
            Behaviour::RateLimited { .. } => ok(),
            Behaviour::Status(code) => format!("HTTP/1.1 {code} Nope\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes(),
            Behaviour::Redirect => {
                b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
            Behaviour::Silent => {
                std::thread::sleep(Duration::from_secs(120));
                return;
            }
            Behaviour::Trickle => {
                for b in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a')).take(600) {
                    if out.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                return;
            }
            Behaviour::Garbage => {
                let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
                let _ = out.write_all(&noise);
                return;
            }
        };
        if out.write_all(&answer).is_err() {
            return;
        }
    }
}

fn ok() -> Vec<u8> {
    let body = br#"{"id":"ok"}"#;
    let mut a = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len())
        .into_bytes();
    a.extend_from_slice(body);
    a
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { request_line, headers, body, via_proxy: None })
}

/// An envelope read back: its header and its items (header, payload).
#[derive(Debug)]
pub struct Envelope {
    pub header: Value,
    pub items: Vec<(Value, Vec<u8>)>,
}

impl Envelope {
    /// Parses an envelope as a tracker does: every item by its `length`; panics on anything else.
    pub fn parse(body: &[u8]) -> Envelope {
        let nl = body.iter().position(|&b| b == b'\n').expect("an envelope header line");
        let header: Value = serde_json::from_slice(&body[..nl]).expect("the envelope header is JSON");
        let mut rest = &body[nl + 1..];
        let mut items = Vec::new();
        while !rest.is_empty() {
            let nl = rest.iter().position(|&b| b == b'\n').expect("an item header line");
            let h: Value = serde_json::from_slice(&rest[..nl]).expect("an item header is JSON");
            let len = h["length"].as_u64().expect("every item has its length") as usize;
            let payload = rest[nl + 1..nl + 1 + len].to_vec();
            assert_eq!(rest.get(nl + 1 + len), Some(&b'\n'), "the payload ends in a newline");
            rest = &rest[nl + 2 + len..];
            items.push((h, payload));
        }
        Envelope { header, items }
    }

    /// The event item's payload, raw.
    pub fn event_bytes(&self) -> &[u8] {
        &self.items.iter().find(|(h, _)| h["type"] == "event").expect("an event item").1
    }

    /// The event, parsed.
    pub fn event(&self) -> Value {
        serde_json::from_slice(self.event_bytes()).expect("the event is JSON")
    }

    /// The attachments' file names.
    pub fn attachments(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|(h, _)| h["type"] == "attachment")
            .map(|(h, _)| h["filename"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// The characters no output may carry raw: C0 controls, DEL, C1 controls, line separators and
/// bidirectional overrides (JSON's own newlines between lines excepted by the caller).
pub fn hostile_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// Removes from `cmd` what the developer's environment could bring in: crashcatch's own
/// settings, proxies, and CI variables.
pub fn clean_env(cmd: &mut std::process::Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if name.starts_with("CRASHCATCH_")
            || name.starts_with("PYTEST_")
            || lower.ends_with("_proxy")
            || name.starts_with("GITHUB_")
            || name.starts_with("CI")
            || name == "GITLAB_CI"
        {
            cmd.env_remove(&name);
        }
    }
}
