//! Debug files fetched from debuginfod servers: a real `debuginfod` (elfutils, Debian's package,
//! `make debuginfod` installs it) started on 127.0.0.1 serves the debug files of a fully
//! stripped copy of the null_deref fixture and its library; crashcatch fetches them into an
//! elfutils-layout cache (which elfutils' own client then reads), and uses the cache on the next
//! run with the server gone. A server that never answers costs the budget and a note; one that
//! sends garbage, a file of another build-id, or an endless body has nothing used or kept.
// Tests read and write files and print freely: the doors are for crashcatch itself.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use common::*;

/// The null_deref fixture and its libccfix.so, built with DWARF (splitdebug variant), copied
/// into a folder of their own and stripped of everything (`strip --strip-all`), so that nothing
/// on this machine holds their debug information; their debug files are kept apart, to serve.
struct Stripped {
    _dir: TempDir,
    exe: PathBuf,
    lib_id: String,
    exe_id: String,
    /// The folder debuginfod is pointed at: the two `.debug` files.
    serve: PathBuf,
}

fn build_id(path: &Path) -> String {
    let elf = crashcatch::modules::ElfInfo::open(path).unwrap_or_else(|e| panic!("{e}"));
    let id = elf.build_id().unwrap_or_else(|| panic!("{} has no build-id", path.display()));
    crashcatch::modules::hex(id)
}

fn stripped() -> Stripped {
    let exe_src = fixture(Variant::Splitdebug, "null_deref");
    let from = exe_src.parent().unwrap().to_path_buf();
    let dir = tempfile::Builder::new().prefix("crashcatch-debuginfod-").tempdir().unwrap();
    let bin = dir.path().join("bin");
    let serve = dir.path().join("serve");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&serve).unwrap();
    for name in ["null_deref", "libccfix.so"] {
        fs::copy(from.join(name), bin.join(name)).unwrap();
        let out = Command::new("strip").arg("--strip-all").arg(bin.join(name)).output().expect("running strip");
        assert!(out.status.success(), "strip {name}: {}", String::from_utf8_lossy(&out.stderr));
        fs::copy(from.join(format!("{name}.debug")), serve.join(format!("{name}.debug"))).unwrap();
    }
    Stripped {
        exe: bin.join("null_deref"),
        lib_id: build_id(&bin.join("libccfix.so")),
        exe_id: build_id(&bin.join("null_deref")),
        serve,
        _dir: dir,
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_status(url: &str) -> Option<u16> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent();
    agent.get(url).call().ok().map(|r| r.status().as_u16())
}

/// Debian's `debuginfod`, serving one folder on a free port, stopped when dropped.
struct Debuginfod {
    child: Child,
    url: String,
    _state: TempDir,
}

impl Debuginfod {
    /// Starts it and waits (bounded, polling the build-id URL) until its scan has indexed the
    /// file of `ready_id`. None (after a visible skip) when debuginfod is not installed.
    fn start(serve: &Path, ready_id: &str) -> Option<Debuginfod> {
        if Command::new("debuginfod").arg("--version").output().is_err() {
            skip("debuginfod tests against elfutils' server", "debuginfod is not installed (make debuginfod)");
            return None;
        }
        for _ in 0..3 {
            let state = tempfile::tempdir().unwrap();
            let port = free_port();
            let log = fs::File::create(state.path().join("log")).unwrap();
            let child = Command::new("debuginfod")
                .args(["-F", "-t", "0", "-g", "0", "-c", "1", "-p", &port.to_string(), "-d"])
                .arg(state.path().join("db.sqlite"))
                .arg(serve)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting debuginfod");
            let mut server = Debuginfod { child, url: format!("http://127.0.0.1:{port}"), _state: state };
            let ready = format!("{}/buildid/{ready_id}/debuginfo", server.url);
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // the port was taken after all: another one
                }
                if http_status(&ready) == Some(200) {
                    return Some(server);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let log = fs::read_to_string(server._state.path().join("log")).unwrap_or_default();
            eprintln!("debuginfod on {} did not serve {ready} in time:\n{log}", server.url);
        }
        panic!("debuginfod could not be started on 127.0.0.1 (three ports tried)");
    }
}

impl Drop for Debuginfod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One crash of the stripped fixture under crashcatch, with the given environment and options.
struct Run {
    output: Output,
    report: Value,
    elapsed: Duration,
}

fn crash(fx: &Stripped, cache: &Path, urls: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Run {
    let out = out_dir();
    let mut c = Command::new(bin());
    c.arg("--output-dir").arg(out.path()).args(["--format", "json"]).args(args).arg("--").arg(&fx.exe);
    c.env("DEBUGINFOD_CACHE_PATH", cache);
    match urls {
        Some(u) => c.env("DEBUGINFOD_URLS", u),
        None => c.env_remove("DEBUGINFOD_URLS"),
    };
    c.envs(env.iter().copied());
    let t = Instant::now();
    let output = run(c);
    let elapsed = t.elapsed();
    let json: Vec<PathBuf> = fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(json.len(), 1, "one report expected\n{}", describe(&output));
    let report = serde_json::from_str(&fs::read_to_string(&json[0]).unwrap()).unwrap();
    Run { output, report, elapsed }
}

impl Run {
    /// The crashed thread's innermost frame (in cc_fixture_crash_null, libccfix.so).
    fn top(&self) -> &Value {
        let t = self.report["threads"].as_array().unwrap().iter().find(|t| t["crashed"] == true).unwrap();
        &t["frames"][0]
    }
    fn notes(&self) -> Vec<String> {
        // `notes` is left out of the JSON when there are none.
        let notes = self.report["notes"].as_array().cloned().unwrap_or_default();
        notes.iter().filter_map(|n| n.as_str().map(String::from)).collect()
    }
    fn has_note(&self, needle: &str) -> bool {
        self.notes().iter().any(|n| n.contains(needle))
    }
    fn context(&self) -> String {
        format!("top frame: {}\nnotes: {:#?}\n{}", self.top(), self.notes(), describe(&self.output))
    }
    /// Whether the top frame has the library's source line (so its DWARF was found).
    fn has_line(&self) -> bool {
        let f = self.top();
        f["file"].as_str().is_some_and(|p| p.ends_with("ccfix.c"))
            && f["line"].as_u64() == Some(crash_line("ccfix.c", "CRASH-LINE").into())
    }
}

fn mode(p: &Path) -> u32 {
    p.metadata().unwrap().permissions().mode() & 0o777
}

/// Every file under the cache (temporary files included), relative to it.
fn cache_files(cache: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![cache.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(cache).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fetches_from_elfutils_debuginfod_then_uses_the_shared_cache() {
    let fx = stripped();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("debuginfod_client");

    // Without DEBUGINFOD_URLS: nothing here has the library's debug info, nothing is fetched.
    let bare = crash(&fx, &cache, None, &[], &[]);
    assert!(!bare.has_line(), "the stripped library has no line without debuginfod\n{}", bare.context());
    assert!(!bare.has_note("debuginfod"), "{}", bare.context());
    assert!(!cache.exists(), "nothing is written without DEBUGINFOD_URLS");

    let Some(server) = Debuginfod::start(&fx.serve, &fx.lib_id) else { return };

    // A link planted where the library's entry goes, to a decoy: never followed, replaced.
    let lib_entry = cache.join(&fx.lib_id);
    fs::create_dir_all(&lib_entry).unwrap();
    fs::set_permissions(&lib_entry, fs::Permissions::from_mode(0o700)).unwrap();
    let decoy = cache_dir.path().join("decoy");
    fs::write(&decoy, b"decoy").unwrap();
    symlink(&decoy, lib_entry.join("debuginfo")).unwrap();

    let urls = format!("http://127.0.0.1:{} {}", free_port(), server.url); // a dead one first
    let first = crash(&fx, &cache, Some(&urls), &[], &[]);
    assert!(first.has_line(), "file:line from the fetched debug file\n{}", first.context());
    assert!(
        first.has_note(&format!("debuginfod: fetched libccfix.so debug info from {}", server.url)),
        "{}",
        first.context()
    );
    assert!(first.has_note("fetched null_deref debug info"), "{}", first.context());
    assert!(first.has_note("cache entry ignored") && first.has_note("is a symbolic link"), "{}", first.context());
    assert_eq!(fs::read(&decoy).unwrap(), b"decoy", "the link's target is untouched");

    // elfutils' layout and modes; the bytes are the served file's.
    for (id, name) in [(&fx.lib_id, "libccfix.so.debug"), (&fx.exe_id, "null_deref.debug")] {
        let f = cache.join(id).join("debuginfo");
        let meta = f.symlink_metadata().unwrap();
        assert!(meta.file_type().is_file(), "{} is a regular file", f.display());
        assert_eq!(mode(&f), 0o400);
        assert_eq!(mode(f.parent().unwrap()), 0o700);
        assert_eq!(fs::read(&f).unwrap(), fs::read(fx.serve.join(name)).unwrap());
    }
    assert!(
        !cache_files(&cache).iter().any(|f| f.contains("debuginfo.")),
        "no temporary file left: {:?}",
        cache_files(&cache)
    );

    // elfutils' own client reads what crashcatch wrote (gdb shares the cache), server or not.
    let dead = format!("http://127.0.0.1:{}", free_port());
    match Command::new("debuginfod-find")
        .args(["debuginfo", &fx.lib_id])
        .env("DEBUGINFOD_URLS", &dead)
        .env("DEBUGINFOD_CACHE_PATH", &cache)
        .output()
    {
        Ok(o) => assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            cache.join(&fx.lib_id).join("debuginfo").display().to_string(),
            "debuginfod-find finds crashcatch's file in the cache: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => skip("debuginfod-find reading crashcatch's cache", &format!("debuginfod-find: {e}")),
    }

    // The server gone, the next run uses the cache.
    let url = server.url.clone();
    drop(server);
    assert_eq!(http_status(&format!("{url}/metrics")), None, "the server is stopped");
    let second = crash(&fx, &cache, Some(&url), &[], &[]);
    assert!(second.has_line(), "file:line from the cache\n{}", second.context());
    assert!(second.has_note("libccfix.so debug info from the cache"), "{}", second.context());
    assert!(!second.has_note("fetched"), "{}", second.context());
}

/// What a fake server does with each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Accepts and reads the request, never answers.
    Hang,
    /// 200 with this body for the library's build-id and `other` for any other one.
    Body,
    /// 200 with no length and bytes until the client goes away (bounded: 1 GB).
    Endless,
}

/// A tiny HTTP server on 127.0.0.1 for the failure cases; it records the request heads.
struct Fake {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn fake(behaviour: Behaviour, lib_id: String, lib_body: Vec<u8>, other_body: Vec<u8>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        // Bounded: a run makes a handful of requests.
        for stream in listener.incoming().take(64).flatten() {
            let head = read_head(&stream);
            seen.lock().unwrap().push(head.clone());
            match behaviour {
                Behaviour::Hang => held.push(stream),
                Behaviour::Body => {
                    let body = if head.contains(&lib_id) { &lib_body } else { &other_body };
                    answer(stream, body);
                }
                Behaviour::Endless => {
                    std::thread::spawn(move || endless(stream));
                }
            }
        }
    });
    Fake { url, requests }
}

fn read_head(stream: &TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = String::new();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    while r.read_line(&mut line).unwrap_or(0) > 2 && head.len() < 16384 {
        head.push_str(&line);
        line.clear();
    }
    head
}

fn answer(mut stream: TcpStream, body: &[u8]) {
    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(body);
}

fn endless(mut stream: TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    let chunk = vec![0x5au8; 64 * 1024];
    for _ in 0..(1 << 30) / chunk.len() {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// Bytes that are nothing in particular (a fixed xorshift sequence).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_server_that_never_answers_costs_the_budget_and_a_note() {
    let fx = stripped();
    let cache = tempfile::tempdir().unwrap();
    let server = fake(Behaviour::Hang, String::new(), Vec::new(), Vec::new());
    let run = crash(&fx, cache.path(), Some(&server.url), &[], &["--debuginfod-timeout", "2"]);
    assert!(
        run.has_note(&format!("debuginfod: no answer from {} within 2 s (for libccfix.so, null_deref", server.url)),
        "{}",
        run.context()
    );
    assert!(!run.has_line(), "{}", run.context());
    assert!(server.requests.lock().unwrap().len() >= 2, "both modules were asked for");
    // The budget bounds the report (2 s, plus the report's own work), and the whole run.
    let total_ms = run.report["timings"]["total_ms"].as_f64().unwrap();
    assert!((2000.0..4000.0).contains(&total_ms), "total_ms {total_ms}\n{}", run.context());
    assert!(run.elapsed < Duration::from_secs(12), "the run took {:?}\n{}", run.elapsed, run.context());
    assert!(cache_files(cache.path()).is_empty(), "nothing cached: {:?}", cache_files(cache.path()));

    // --debuginfod-timeout 0: nothing is asked.
    let before = server.requests.lock().unwrap().len();
    let off = crash(&fx, cache.path(), Some(&server.url), &[], &["--debuginfod-timeout", "0"]);
    assert!(!off.has_note("debuginfod"), "{}", off.context());
    assert_eq!(server.requests.lock().unwrap().len(), before, "no request with a zero budget");
}

#[test]
fn garbage_and_wrong_build_ids_are_neither_used_nor_kept() {
    let fx = stripped();
    let cache = tempfile::tempdir().unwrap();
    // For the library: random bytes. For the executable: a real ELF file with DWARF, but
    // another build-id (the fp variant's null_deref).
    let wrong = fs::read(fixture(Variant::Fp, "null_deref")).unwrap();
    let server = fake(Behaviour::Body, fx.lib_id.clone(), noise(100_000), wrong);
    let run = crash(&fx, cache.path(), Some(&server.url), &[], &[]);
    assert!(!run.has_line(), "garbage gives no line\n{}", run.context());
    let sent = format!("debuginfod: {} sent a file for", server.url);
    assert!(run.has_note(&format!("{sent} libccfix.so that was not used: it is not an ELF file")), "{}", run.context());
    assert!(run.has_note(&format!("{sent} null_deref that was not used: its build-id is")), "{}", run.context());
    assert!(cache_files(cache.path()).is_empty(), "nothing kept: {:?}", cache_files(cache.path()));
    let run_top = run.top();
    assert_eq!(run_top["function"], "cc_fixture_crash_null", "the .dynsym name is still there");
}

#[test]
fn an_endless_body_is_cut_at_the_size_cap() {
    let fx = stripped();
    let cache = tempfile::tempdir().unwrap();
    let server = fake(Behaviour::Endless, String::new(), Vec::new(), Vec::new());
    let run = crash(&fx, cache.path(), Some(&server.url), &[("DEBUGINFOD_MAXSIZE", "200000")], &[]);
    assert!(
        run.has_note(&format!(
            "debuginfod: libccfix.so debug info on {} is larger than 195 kB: not fetched",
            server.url
        )),
        "{}",
        run.context()
    );
    assert!(cache_files(cache.path()).is_empty(), "nothing kept: {:?}", cache_files(cache.path()));
    let heads = server.requests.lock().unwrap().join("\n").to_ascii_lowercase();
    assert!(heads.contains("x-debuginfod-maxsize: 200000"), "the cap is told to the server:\n{heads}");
    assert!(heads.contains(&format!("get /buildid/{}/debuginfo", fx.lib_id)), "{heads}");
    assert!(heads.contains("user-agent: crashcatch/"), "{heads}");
    // Cut off at the cap, not at the budget.
    let total_ms = run.report["timings"]["total_ms"].as_f64().unwrap();
    assert!(total_ms < 4000.0, "total_ms {total_ms}\n{}", run.context());
}

/// `openssl s_server -WWW` with a certificate for 127.0.0.1 signed by a CA made for the test,
/// serving `buildid/<id>/debuginfo` files; stopped when dropped.
struct TlsServer {
    child: Child,
    url: String,
    ca: PathBuf,
    _dir: TempDir,
}

impl TlsServer {
    fn start(fx: &Stripped) -> Option<TlsServer> {
        let dir = tempfile::tempdir().unwrap();
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
        fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
        for args in &steps {
            match openssl(args) {
                Err(e) => {
                    skip("debuginfod over https", &format!("openssl: {e}"));
                    return None;
                }
                Ok(o) => assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
            }
        }
        let www = d.join("www");
        for (id, name) in [(&fx.lib_id, "libccfix.so.debug"), (&fx.exe_id, "null_deref.debug")] {
            let to = www.join("buildid").join(id);
            fs::create_dir_all(&to).unwrap();
            fs::copy(fx.serve.join(name), to.join("debuginfo")).unwrap();
        }
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(d.join("srv.pem"))
            .arg("-key")
            .arg(d.join("srv.key"))
            .current_dir(&www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting openssl s_server");
        let server = TlsServer { child, url: format!("https://127.0.0.1:{port}"), ca: d.join("ca.pem"), _dir: dir };
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "openssl s_server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_servers_are_checked_against_the_system_store() {
    let fx = stripped();
    let Some(server) = TlsServer::start(&fx) else { return };
    // The test's CA is not in the system store: the certificate is refused, nothing is used.
    let cache = tempfile::tempdir().unwrap();
    let refused = crash(&fx, cache.path(), Some(&server.url), &[], &[]);
    assert!(!refused.has_line(), "{}", refused.context());
    assert!(refused.has_note(&format!("debuginfod: {} failed for libccfix.so", server.url)), "{}", refused.context());
    assert!(cache_files(cache.path()).is_empty(), "{:?}", cache_files(cache.path()));
    // SSL_CERT_FILE names the store (as for curl): fetched over TLS.
    let ca = server.ca.display().to_string();
    let run = crash(&fx, cache.path(), Some(&server.url), &[("SSL_CERT_FILE", &ca)], &[]);
    assert!(run.has_line(), "{}", run.context());
    assert!(
        run.has_note(&format!("debuginfod: fetched libccfix.so debug info from {}", server.url)),
        "{}",
        run.context()
    );
}
