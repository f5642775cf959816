//! A real Bugsink on 127.0.0.1 for one test: `scripts/install-bugsink.sh` (run by `make
//! bugsink`, which `make test` runs) installed it in `target/bugsink-venv` with a migrated
//! template database holding one project; each test copies that template into a folder of its
//! own (a copy is instant, a migration takes seconds), serves it with `bugsink-manage runserver
//! 127.0.0.1:PORT --noreload` on a free port, and reads what Bugsink stored straight from its
//! SQLite database. Events are digested as they arrive (the local template's eager tasks) and
//! checked against Sentry's event schema, strictly: an event Bugsink finds invalid is dropped
//! and the test sees it missing.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long Bugsink may take to start answering.
const STARTUP: Duration = Duration::from_secs(60);

pub struct Bugsink {
    child: Child,
    pub dir: TempDir,
    pub port: u16,
    pub dsn: String,
    venv: PathBuf,
}

fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("bugsink-venv")
}

impl Bugsink {
    /// Starts a Bugsink of its own, or says why it cannot (the test is then skipped).
    pub fn start() -> Result<Bugsink, String> {
        let venv = venv();
        let template = venv.join("template");
        if !venv.join(".stamp").exists() {
            return Err(format!("{} is not installed (make bugsink)", venv.display()));
        }
        let dir = tempfile::Builder::new().prefix("crashcatch-bugsink-").tempdir().map_err(|e| e.to_string())?;
        for f in ["bugsink_conf.py", "db.sqlite3", "snappea.sqlite3"] {
            std::fs::copy(template.join(f), dir.path().join(f)).map_err(|e| format!("copying {f}: {e}"))?;
        }
        let template_dsn = std::fs::read_to_string(template.join("dsn")).map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let base = format!("http://127.0.0.1:{port}");
        // http://KEY@127.0.0.1:8000/1 → http://KEY@127.0.0.1:PORT/1
        let (key_part, rest) = template_dsn.trim().split_once('@').ok_or("no @ in the template's DSN")?;
        let project = rest.rsplit('/').next().unwrap_or("1");
        let dsn = format!("{key_part}@127.0.0.1:{port}/{project}");
        let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
        let mut server = Command::new(venv.join("bin").join("bugsink-manage"));
        // SAFETY: prctl with integer arguments, between fork and exec. The server dies with the
        // test's thread even when the test process is killed (Drop stops it otherwise).
        unsafe {
            server.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let child = server
            .args(["runserver", &format!("127.0.0.1:{port}"), "--noreload"])
            .current_dir(dir.path())
            .env("BUGSINK_TEST_DIR", dir.path())
            .env("BUGSINK_BASE_URL", &base)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting bugsink-manage: {e}"))?;
        let mut b = Bugsink { child, dir, port, dsn, venv };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = b.child.try_wait() {
                return Err(format!("bugsink-manage runserver ended ({status}): {}", b.log()));
            }
            if t0.elapsed() > STARTUP {
                return Err(format!("Bugsink did not answer within {STARTUP:?}: {}", b.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(b)
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs Python (the venv's) on the database; returns what the script printed, as JSON.
    fn query(&self, script: &str) -> Value {
        let out = Command::new(self.venv.join("bin").join("python"))
            .arg("-c")
            .arg(script)
            .arg(self.dir.path().join("db.sqlite3"))
            .output()
            .expect("running the venv's python");
        assert!(out.status.success(), "query failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the query printed JSON")
    }

    /// Every stored event: `{"event_id", "issue", "level", "data"}` (data: the event as stored).
    pub fn events(&self) -> Vec<Value> {
        let v = self.query(
            r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select event_id, issue_id, level, data from events_event order by digested_at, rowid").fetchall()
print(json.dumps([{"event_id": e, "issue": str(i), "level": l, "data": json.loads(d)} for e, i, l, d in rows]))
"#,
        );
        v.as_array().cloned().unwrap_or_default()
    }

    /// How many issues Bugsink made.
    pub fn issue_count(&self) -> u64 {
        self.query(
            r#"
import json, sqlite3, sys
print(json.dumps(sqlite3.connect(sys.argv[1]).execute("select count(*) from issues_issue").fetchone()[0]))
"#,
        )
        .as_u64()
        .unwrap_or(0)
    }
}

impl Drop for Bugsink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
