//! Every missing debug file asked of every server at once, one thread per (file, server), under
//! one deadline for all: the first server whose file passes the checks wins, the others stop;
//! what has not ended by the deadline is left to end by itself (its own requests carry the same
//! deadline) and counts as no answer.

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use super::cache::CacheEntry;
use super::config::DebuginfodConfig;
use super::download::{self, Attempt, FetchRequest};

/// One debug file to fetch.
pub(crate) struct FetchJob {
    pub hex: String,
    pub build_id: Vec<u8>,
    pub entry: CacheEntry,
}

/// Per job, per server (in `config.servers` order): what came of it, `None` when it had not
/// ended by the deadline.
pub(crate) type Outcomes = Vec<Vec<Option<Attempt>>>;

pub(crate) fn fetch_all(config: &DebuginfodConfig, jobs: Vec<FetchJob>, deadline: Instant) -> Outcomes {
    let servers = config.servers.len();
    let mut out: Outcomes = jobs.iter().map(|_| vec![None; servers]).collect();
    let config = Arc::new(config.clone());
    let agent = download::agent(config.servers.iter().any(|s| s.to_ascii_lowercase().starts_with("https:")));
    let (tx, rx) = mpsc::channel::<(usize, usize, Attempt)>();
    let mut running = 0usize;
    let mut failed = Vec::new();
    for (j, job) in jobs.into_iter().enumerate() {
        let job = Arc::new(job);
        let done = Arc::new(AtomicBool::new(false));
        for s in 0..servers {
            let (config, job, done, agent, tx) = (config.clone(), job.clone(), done.clone(), agent.clone(), tx.clone());
            // Signals stay blocked in it: the supervisor's handlers (forwarding, detach, the hang
            // timer) must run on the main thread, where they interrupt waitpid.
            let spawned = crate::process::quiet_thread::spawn_sized("debuginfod", Some(256 << 10), move || {
                let request = FetchRequest {
                    server: &config.servers[s],
                    hex: &job.hex,
                    build_id: &job.build_id,
                    entry: &job.entry,
                    deadline,
                    config: &config,
                    done: &done,
                };
                let _ = tx.send((j, s, download::fetch(&agent, &request)));
            });
            match spawned {
                Ok(_) => running += 1,
                Err(e) => failed.push((j, s, format!("cannot start a thread: {e}"))),
            }
        }
    }
    drop(tx);
    for (j, s, why) in failed {
        out[j][s] = Some(Attempt::Failed(why));
    }
    while running > 0 && !out.iter().all(|o| settled(o)) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        match rx.recv_timeout(left) {
            Ok((j, s, attempt)) => {
                out[j][s] = Some(attempt);
                running -= 1;
            }
            Err(_) => break,
        }
    }
    out
}

/// A job is settled when one server delivered it or every server answered.
fn settled(outcomes: &[Option<Attempt>]) -> bool {
    outcomes.iter().any(|a| matches!(a, Some(Attempt::Fetched { .. }))) || outcomes.iter().all(Option::is_some)
}
