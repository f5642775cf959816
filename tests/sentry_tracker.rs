//! `--sentry-dsn` against trackers made for the test (tests/tracker): a real crash (the C
//! fixture `null_deref`, a NULL read in libccfix.so) arrives as one envelope whose event and
//! attachments say what the report says; `crashcatch upload` sends the same event id again;
//! trackers that refuse connections, never answer, trickle, fail, redirect, rate-limit or talk
//! garbage cost at most `--sentry-timeout` (checked as a bound with 2 s of slack over a run
//! without a tracker), leave the command's exit status as it is, give exactly one line on
//! stderr, and never show the DSN's key; target strings that hold escape sequences reach the
//! tracker as valid JSON without a raw control character; the proxy the environment names for
//! the DSN's scheme is used, and `no_proxy` is honoured.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;
mod tracker;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tracker::{clean_env, hostile_chars, refused_port, Behaviour, Envelope, Fake, KEY};

/// The crash every test here sends.
fn crasher() -> Vec<OsString> {
    vec![fixture(Variant::Fp, "null_deref").into_os_string()]
}

/// `crashcatch --output-dir DIR ARGS -- CMD` with a clean environment plus `env`; the output and
/// how long it took.
fn crashcatch(args: &[&str], cmd: &[OsString], dir: &Path, env: &[(&str, &str)]) -> (Output, Duration) {
    let mut c = Command::new(bin());
    clean_env(&mut c);
    c.envs(env.iter().copied());
    c.arg("--output-dir").arg(dir).args(args).arg("--").args(cmd);
    let t0 = Instant::now();
    let out = run(c);
    (out, t0.elapsed())
}

/// `crashcatch upload --sentry-dsn DSN DIR`.
fn upload(dsn: &str, dir: &Path) -> Output {
    let mut c = Command::new(bin());
    clean_env(&mut c);
    c.args(["upload", "--sentry-dsn", dsn]).arg(dir);
    run(c)
}

fn json_report(dir: &Path) -> Value {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

/// Every file in `dir`, as text.
fn all_files(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
        .collect()
}

/// The lines crashcatch said about the tracker.
fn sentry_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("crashcatch: sentry:"))
        .map(String::from)
        .collect()
}

fn no_key_anywhere(out: &Output, dir: &Path) {
    let text =
        format!("{}{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr), all_files(dir));
    assert!(!text.contains(KEY), "the DSN's key was shown:\n{}", describe(out));
}

#[test]
fn a_crash_arrives_as_one_envelope_with_its_event_and_reports() {
    let fake = Fake::start(Behaviour::Accept);
    let dir = out_dir();
    let bare = run_bare(&crasher());
    // The DSN through the environment, and --show-env: the process inherits the variable, and
    // its report must not show the key.
    let (out, _) = crashcatch(
        &["--show-env", "--format", "json"],
        &crasher(),
        dir.path(),
        &[("CRASHCATCH_SENTRY_DSN", &fake.dsn())],
    );
    assert_eq!(status_pair(&out.status), status_pair(&bare.status), "{}", describe(&out));
    assert!(sentry_lines(&out).is_empty(), "{}", describe(&out));
    no_key_anywhere(&out, dir.path());
    let report = json_report(dir.path());
    let env = report["process"]["environment"].as_array().unwrap();
    assert!(env.iter().any(|v| v["name"] == "CRASHCATCH_SENTRY_DSN" && v["value"] == "(hidden)"), "{env:?}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "one report, one request");
    let r = &requests[0];
    assert_eq!(r.request_line, "POST /api/42/envelope/ HTTP/1.1");
    let auth = r.header("x-sentry-auth").expect("X-Sentry-Auth");
    assert!(auth.starts_with("Sentry sentry_version=7, sentry_key=") && auth.contains(KEY), "{auth}");
    assert_eq!(r.header("content-type"), Some("application/x-sentry-envelope"));

    let envelope = Envelope::parse(&r.body);
    let ev = envelope.event();
    assert_eq!(envelope.header["event_id"], ev["event_id"]);
    assert_eq!(ev["event_id"].as_str().unwrap().len(), 32);
    assert_eq!(ev["level"], "fatal");
    assert_eq!(ev["platform"], "native");
    assert_eq!(ev["fingerprint"], serde_json::json!([report["fingerprint"]]));
    assert_eq!(ev["tags"]["signal"], "SIGSEGV");
    assert_eq!(ev["tags"]["kind"], "crash");
    let exc = &ev["exception"]["values"][0];
    assert_eq!(exc["type"], "SIGSEGV");
    assert!(exc["value"].as_str().unwrap().contains("cc_fixture_crash_null"), "{exc}");
    assert_eq!(exc["mechanism"]["handled"], false);
    assert_eq!(exc["mechanism"]["meta"]["signal"]["number"], 11);
    assert_eq!(exc["mechanism"]["meta"]["signal"]["name"], "SIGSEGV");
    assert_eq!(exc["mechanism"]["meta"]["signal"]["code_name"], "SEGV_MAPERR");
    assert_eq!(exc["mechanism"]["data"]["relevant_address"], "0x0");
    assert_eq!(exc["thread_id"], report["crashed_tid"]);

    // The crashed thread's stack, oldest first: main → run_job → cc_fixture_crash_null.
    let frames = exc["stacktrace"]["frames"].as_array().unwrap();
    let names: Vec<&str> = frames.iter().filter_map(|f| f["function"].as_str()).collect();
    let pos = |n: &str| names.iter().position(|f| *f == n).unwrap_or_else(|| panic!("no {n} in {names:?}"));
    assert!(pos("main") < pos("run_job") && pos("run_job") < pos("cc_fixture_crash_null"), "{names:?}");
    assert_eq!(names.last(), Some(&"cc_fixture_crash_null"));
    let top = frames.last().unwrap();
    assert_eq!(top["lineno"], crash_line("ccfix.c", "CRASH-LINE") as u64);
    assert!(top["package"].as_str().unwrap().ends_with("libccfix.so"));
    assert_eq!(top["in_app"], true, "the fixture's own library is the application's");
    let culprit = &report["culprit"]["frame"];
    assert_eq!(top["instruction_addr"], culprit["address"]);
    assert_eq!(exc["stacktrace"]["instruction_addr_adjustment"], "all_but_first");
    assert!(exc["stacktrace"]["registers"]["rip"].is_string() || exc["stacktrace"]["registers"]["pc"].is_string());

    // The crashed thread is listed without a stack of its own (its stack is the exception's).
    let threads = ev["threads"]["values"].as_array().unwrap();
    let crashed = threads.iter().find(|t| t["crashed"] == true).expect("a crashed thread");
    assert_eq!(crashed["id"], report["crashed_tid"]);
    assert!(crashed.get("stacktrace").is_none());

    // Debug images: libccfix.so with its build-id and the debug id derived from it.
    let module = report["modules"].as_array().unwrap().iter().find(|m| m["path"] == culprit["module"]).unwrap();
    let build_id = module["build_id"].as_str().expect("the fixture has a build-id");
    let images = ev["debug_meta"]["images"].as_array().unwrap();
    let image = images.iter().find(|i| i["code_file"] == culprit["module"]).expect("libccfix.so's image");
    assert_eq!(image["type"], "elf");
    assert_eq!(image["code_id"], build_id);
    assert_eq!(image["image_addr"], module["base"]);
    let b = |i: usize| &build_id[2 * i..2 * i + 2];
    let expect = format!(
        "{}{}{}{}-{}{}-{}{}-{}-{}",
        b(3),
        b(2),
        b(1),
        b(0),
        b(5),
        b(4),
        b(7),
        b(6),
        &build_id[16..20],
        &build_id[20..32]
    );
    assert_eq!(image["debug_id"], expect.as_str());
    assert!(image["image_size"].as_u64().unwrap() > 0);

    // The attachments are the report itself: the JSON one byte for byte as on disk.
    let names = envelope.attachments();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("crash-") && names[0].ends_with(".txt"), "{names:?}");
    let on_disk = std::fs::read(report["files"][0].as_str().unwrap()).unwrap();
    let attached =
        &envelope.items.iter().find(|(h, _)| h["filename"].as_str().is_some_and(|f| f.ends_with(".json"))).unwrap().1;
    assert_eq!(attached, &on_disk);
}

#[test]
fn failing_trackers_cost_at_most_the_timeout_and_one_line() {
    let dir = out_dir();
    let (baseline_out, baseline) = crashcatch(&[], &crasher(), dir.path(), &[]);
    let bare = status_pair(&baseline_out.status);
    let limit = 2u64;
    let cases: Vec<(&str, String, &str)> = vec![
        ("refused", format!("http://{KEY}@127.0.0.1:{}/42", refused_port()), "refused"),
        ("silent", Fake::start(Behaviour::Silent).dsn(), "no answer within --sentry-timeout"),
        ("trickle", Fake::start(Behaviour::Trickle).dsn(), "no answer within --sentry-timeout"),
        ("500", Fake::start(Behaviour::Status(500)).dsn(), "HTTP 500"),
        ("garbage", Fake::start(Behaviour::Garbage).dsn(), "not HTTP"),
        ("redirect", Fake::start(Behaviour::Redirect).dsn(), "redirects elsewhere"),
        ("403", Fake::start(Behaviour::Status(403)).dsn(), "refused the DSN's key"),
        ("429", Fake::start(Behaviour::RateLimited { retry_after: 3600, n: 1000 }).dsn(), "rate limit"),
    ];
    for (name, dsn, says) in cases {
        let dir = out_dir();
        let (out, took) = crashcatch(&["--sentry-dsn", &dsn, "--sentry-timeout", "2"], &crasher(), dir.path(), &[]);
        let all = format!("{name}: took {took:?}\n{}", describe(&out));
        assert_eq!(status_pair(&out.status), bare, "{all}");
        assert!(
            took <= baseline + Duration::from_secs(limit + 2),
            "{all}\n(a run without a tracker took {baseline:?})"
        );
        let lines = sentry_lines(&out);
        assert_eq!(lines.len(), 1, "{all}");
        assert!(lines[0].contains("1 of 1 event not sent to http://127.0.0.1:") && lines[0].contains(says), "{all}");
        no_key_anywhere(&out, dir.path());
        // The report is on disk as without a tracker.
        assert_eq!(json_report(dir.path())["signal"]["name"], "SIGSEGV");
    }
}

#[test]
fn a_rate_limit_that_ends_within_the_timeout_is_waited_for() {
    let fake = Fake::start(Behaviour::RateLimited { retry_after: 1, n: 1 });
    let dir = out_dir();
    let (out, took) = crashcatch(&["--sentry-dsn", &fake.dsn(), "--sentry-timeout", "5"], &crasher(), dir.path(), &[]);
    assert!(sentry_lines(&out).is_empty(), "{}", describe(&out));
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "a 429, then the event again after Retry-After");
    assert_eq!(
        Envelope::parse(&requests[0].body).event()["event_id"],
        Envelope::parse(&requests[1].body).event()["event_id"]
    );
    assert!(took >= Duration::from_secs(1), "Retry-After: 1 was not waited for ({took:?})");
}

#[test]
fn upload_sends_the_event_id_of_the_live_run() {
    let fake = Fake::start(Behaviour::Accept);
    let dir = out_dir();
    let (out, _) = crashcatch(&["--sentry-dsn", &fake.dsn()], &crasher(), dir.path(), &[]);
    assert!(sentry_lines(&out).is_empty(), "{}", describe(&out));
    for _ in 0..2 {
        let up = upload(&fake.dsn(), dir.path());
        assert_eq!(up.status.code(), Some(0), "{}", describe(&up));
        let stderr = String::from_utf8_lossy(&up.stderr);
        assert!(stderr.contains("crashcatch: sent 1 event to http://127.0.0.1:"), "{stderr}");
        assert!(!stderr.contains(KEY));
    }
    let ids: Vec<Value> =
        fake.requests().iter().map(|r| Envelope::parse(&r.body).event()["event_id"].clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");

    // A tracker that is down: upload says so and fails.
    let up = upload(&format!("http://{KEY}@127.0.0.1:{}/42", refused_port()), dir.path());
    assert_eq!(up.status.code(), Some(1), "{}", describe(&up));
    assert!(!String::from_utf8_lossy(&up.stderr).contains(KEY));
}

#[test]
fn a_bad_dsn_is_a_usage_error_that_does_not_quote_it() {
    let dir = out_dir();
    for bad in [format!("https://{KEY}@bad host/1"), format!("ftp://{KEY}@h/1"), format!("https://{KEY}@h")] {
        let (out, _) = crashcatch(&["--sentry-dsn", &bad], &crasher(), dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("crashcatch: --sentry-dsn: the Sentry DSN"), "{stderr}");
        no_key_anywhere(&out, dir.path());
    }
    // Empty (a CI secret a fork does not get): nothing is sent, the run is as ever.
    let (out, _) = crashcatch(&[], &crasher(), dir.path(), &[("CRASHCATCH_SENTRY_DSN", "")]);
    assert_eq!(status_pair(&out.status), status_pair(&run_bare(&crasher()).status));
    assert!(sentry_lines(&out).is_empty());
    // --help shows that the variable exists, not its value.
    let mut c = Command::new(bin());
    c.arg("--help").env("CRASHCATCH_SENTRY_DSN", format!("https://{KEY}@h/1"));
    let help = run(c);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("CRASHCATCH_SENTRY_DSN") && !text.contains(KEY), "{text}");
}

/// A Python function and file whose names hold escape sequences, newlines, C1 controls and
/// bidirectional overrides, crashing through ctypes while PYTEST_CURRENT_TEST holds the same.
const HOSTILE: &str = r#"
import ctypes, sys
evil = "\x1b[31mred\x1b]0;title\x07\n::error::x\u009b2J\u202egnp.\u2028##[warning]"
code = compile("def f():\n    ctypes.string_at(0)\n", "/tmp/" + evil + ".py", "exec")
ns = {"ctypes": ctypes}
exec(code, ns)
f = ns["f"]
name = "f" + evil
f.__code__ = f.__code__.replace(co_name=name, co_qualname=name) if sys.version_info >= (3, 11) else f.__code__.replace(co_name=name)
import os
os.environ["PYTEST_CURRENT_TEST"] = "t.py::test_" + evil + " (call)"
f()
"#;

#[test]
fn hostile_target_strings_arrive_as_valid_json_without_control_characters() {
    let fake = Fake::start(Behaviour::Accept);
    let dir = out_dir();
    let cmd: Vec<OsString> = vec![venv_python().into(), "-c".into(), HOSTILE.into()];
    let (out, _) = crashcatch(&["--sentry-dsn", &fake.dsn()], &cmd, dir.path(), &[]);
    assert_eq!(exit_signal(&out.status), Some(libc::SIGSEGV), "{}", describe(&out));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{}", describe(&out));
    let envelope = Envelope::parse(&requests[0].body);
    let raw = std::str::from_utf8(envelope.event_bytes()).expect("the event is UTF-8");
    assert_eq!(hostile_chars(raw), Vec::<char>::new(), "raw control characters in the event");
    let ev: Value = serde_json::from_str(raw).unwrap();
    // The strings are all there, escaped, and read back as they were.
    let frames = ev["exception"]["values"][0]["stacktrace"]["frames"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f["function"].as_str().is_some_and(|n| n.contains("\x1b[31mred") && n.contains('\u{202e}'))),
        "{frames:?}"
    );
    // Tags are one line each and no longer than trackers take.
    for (k, v) in ev["tags"].as_object().unwrap() {
        let v = v.as_str().unwrap();
        assert!(v.chars().count() <= 200 && !v.chars().any(char::is_control), "{k}: {v:?}");
    }
    assert!(ev["tags"]["test"].as_str().unwrap().starts_with("t.py::test_ [31mred"), "{}", ev["tags"]);
    // Every header line and attachment of the envelope is clean too.
    for (h, payload) in &envelope.items {
        assert_eq!(hostile_chars(&h.to_string()), Vec::<char>::new());
        let text = String::from_utf8_lossy(payload);
        let bad: Vec<char> = hostile_chars(&text).into_iter().filter(|c| *c != '\n').collect();
        assert_eq!(bad, Vec::<char>::new(), "{}", h["filename"]);
    }
}

#[test]
fn the_proxy_for_the_dsns_scheme_is_used_and_no_proxy_honoured() {
    let proxy = Fake::start(Behaviour::Accept);
    let dir = out_dir();
    let dsn = format!("http://{KEY}@tracker.invalid:9/42");
    let via = format!("http://127.0.0.1:{}", proxy.port);
    let (out, _) = crashcatch(
        &["--sentry-dsn", &dsn],
        &crasher(),
        dir.path(),
        &[("http_proxy", &via), ("https_proxy", "http://127.0.0.1:1")],
    );
    assert!(sentry_lines(&out).is_empty(), "{}", describe(&out));
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{}", describe(&out));
    assert_eq!(requests[0].via_proxy.as_deref(), Some("tracker.invalid:9"));
    assert_eq!(requests[0].request_line, "POST /api/42/envelope/ HTTP/1.1");

    let (out, _) = crashcatch(
        &["--sentry-dsn", &dsn, "--sentry-timeout", "2"],
        &crasher(),
        dir.path(),
        &[("http_proxy", &via), ("NO_PROXY", "localhost,.invalid")],
    );
    assert_eq!(proxy.requests().len(), 1, "no_proxy: straight to the (unresolvable) host");
    assert_eq!(sentry_lines(&out).len(), 1, "{}", describe(&out));
}

/// A tracker over https: Python's http.server behind TLS with a certificate for 127.0.0.1 signed
/// by a CA made for the test (openssl), writing each envelope it takes to a file.
struct TlsTracker {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

const TLS_SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        open(sys.argv[2], "ab").write(body)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("srv.pem", "srv.key")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

impl TlsTracker {
    fn start() -> Option<TlsTracker> {
        let dir = out_dir();
        let d = dir.path();
        let openssl = |args: &[&str]| Command::new("openssl").args(args).current_dir(d).output();
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2";
        let ca = format!("req -x509 {key} -keyout ca.key -out ca.pem");
        let csr = format!("req {key} -keyout srv.key -out srv.csr");
        let sign =
            "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf";
        let steps: [Vec<&str>; 3] = [
            ca.split(' ')
                .chain(["-subj", "/CN=crashcatch test CA", "-addext", "basicConstraints=critical,CA:TRUE"])
                .collect(),
            csr.split(' ').chain(["-subj", "/CN=127.0.0.1"]).collect(),
            sign.split(' ').collect(),
        ];
        std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
        for args in &steps {
            match openssl(args) {
                Err(e) => {
                    skip("crash tracker over https", &format!("openssl: {e}"));
                    return None;
                }
                Ok(o) => assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-c", TLS_SERVER, &port.to_string()])
            .arg(d.join("envelopes"))
            .current_dir(d)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("starting python3");
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the https tracker did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(TlsTracker { child, port, dir })
    }

    fn received(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("envelopes")).unwrap_or_default()
    }
}

impl Drop for TlsTracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_trackers_are_checked_against_the_system_store() {
    let Some(tls) = TlsTracker::start() else { return };
    let dsn = format!("https://{KEY}@127.0.0.1:{}/42", tls.port);
    // The test's CA is not in the system store: refused, one line, nothing sent.
    let dir = out_dir();
    let (out, _) = crashcatch(&["--sentry-dsn", &dsn, "--sentry-timeout", "5"], &crasher(), dir.path(), &[]);
    let lines = sentry_lines(&out);
    assert_eq!(lines.len(), 1, "{}", describe(&out));
    assert!(lines[0].contains("certificate"), "{lines:?}");
    assert!(tls.received().is_empty());
    // SSL_CERT_FILE names the store (as for curl): sent over TLS.
    let ca = tls.dir.path().join("ca.pem").display().to_string();
    let dir = out_dir();
    let (out, _) = crashcatch(&["--sentry-dsn", &dsn], &crasher(), dir.path(), &[("SSL_CERT_FILE", &ca)]);
    assert!(sentry_lines(&out).is_empty(), "{}", describe(&out));
    let env = Envelope::parse(&tls.received());
    assert_eq!(env.event()["exception"]["values"][0]["type"], "SIGSEGV");
    no_key_anywhere(&out, dir.path());
}
