//! debuginfod: the separate debug files of the modules a report's frames are in, fetched by
//! build-id from the servers in `DEBUGINFOD_URLS` when this machine has none, through the cache
//! elfutils (gdb) uses, within one time budget for all. Every file is checked (ELF, the build-id
//! asked for) before it is used or kept, and the report's notes say what happened.
//!
//! The binary calls `configure` once at start-up; `fetch_missing` is called between
//! unwinding and symbolizing. Without `DEBUGINFOD_URLS` (or with a zero budget) it does nothing.

mod cache;
mod config;
mod download;
mod fetch;
mod verify;

use std::collections::HashSet;
use std::time::{Duration, Instant};

pub use config::DebuginfodConfig;
pub(crate) use config::DEFAULT_BUDGET;
use download::Attempt;

use super::{hex, Module, ModuleSet};
use cache::{CacheEntry, Lookup};
use fetch::FetchJob;

/// At most this many requests (modules × servers) per report.
pub(crate) const MAX_REQUESTS: usize = 64;

/// The settings from crashcatch's own `DEBUGINFOD_*` environment; `budget` is the total time
/// the fetching of one report may take (`None`: `DEFAULT_BUDGET`, zero: never fetch).
pub fn config_from_env(budget: Option<Duration>) -> DebuginfodConfig {
    DebuginfodConfig::from_env(|k: &str| std::env::var(k).ok(), budget.unwrap_or(DEFAULT_BUDGET))
}

/// Fetches the debug files of the modules that hold one of `pcs` and have no debug
/// information here (no DWARF, no debug file found locally), and gives them to those modules.
pub(crate) fn fetch_missing(
    config: &DebuginfodConfig,
    modules: &ModuleSet,
    pcs: impl IntoIterator<Item = u64>,
    notes: &mut Vec<String>,
) {
    let (Some(root), true) = (config.cache.as_deref(), config.enabled()) else { return };
    let start = Instant::now();
    let deadline = start + config.budget;
    let mut wanted = missing(modules, pcs);
    if wanted.is_empty() {
        return;
    }
    notes.extend(config.ignored.iter().map(|i| format!("debuginfod: DEBUGINFOD_URLS entry {i} not used")));
    let cap = (MAX_REQUESTS / config.servers.len()).max(1);
    if wanted.len() > cap {
        notes.push(format!(
            "debuginfod: {} more modules without debug info were not looked up (at most {cap} per report)",
            wanted.len() - cap
        ));
        wanted.truncate(cap);
    }

    // The cache first: a verified file there needs no server.
    let ttl = cache::miss_ttl(root);
    let mut to_fetch: Vec<(&Module, FetchJob)> = Vec::new();
    for (module, id) in wanted {
        let h = hex(&id);
        let entry = CacheEntry::new(root, &h);
        match entry.lookup(&id, ttl) {
            Lookup::Hit(elf) => {
                if let Ok(e) = module.elf() {
                    e.set_fetched_debug_file(*elf);
                }
                notes.push(format!(
                    "debuginfod: {} debug info from the cache ({})",
                    module.name(),
                    entry.file.display()
                ));
            }
            Lookup::Miss { age } => notes.push(format!(
                "debuginfod: {}: no server had its debug info {} s ago (cached miss, {})",
                module.name(),
                age.as_secs(),
                entry.file.display()
            )),
            Lookup::Refused(why) => notes.push(format!("debuginfod: {}: cache entry not used: {why}", module.name())),
            Lookup::Unusable(why) => {
                notes.push(format!("debuginfod: {}: cache entry ignored: {why}", module.name()));
                to_fetch.push((module, FetchJob { hex: h, build_id: id, entry }));
            }
            Lookup::Absent => to_fetch.push((module, FetchJob { hex: h, build_id: id, entry })),
        }
    }
    if to_fetch.is_empty() {
        return;
    }

    let (mods, jobs): (Vec<&Module>, Vec<FetchJob>) = to_fetch.into_iter().unzip();
    let entries: Vec<(CacheEntry, Vec<u8>)> = jobs.iter().map(|j| (j.entry.clone(), j.build_id.clone())).collect();
    let outcomes = fetch::fetch_all(config, jobs, deadline);
    let mut silent: Vec<Vec<&str>> = vec![Vec::new(); config.servers.len()];
    for ((module, (entry, id)), per_server) in mods.iter().zip(&entries).zip(&outcomes) {
        install(config, module, entry, id, ttl, per_server, &mut silent, notes);
    }
    for (server, names) in config.servers.iter().zip(&silent) {
        if !names.is_empty() {
            notes.push(format!(
                "debuginfod: no answer from {server} within {} (for {})",
                seconds(config.budget),
                names.join(", ")
            ));
        }
    }
}

/// The outcome for one module: the fetched file given to it, or notes saying why not.
/// Servers that did not answer in time are collected in `silent`, for one note per server.
#[allow(clippy::too_many_arguments)]
fn install<'m>(
    config: &DebuginfodConfig,
    module: &'m Module,
    entry: &CacheEntry,
    id: &[u8],
    ttl: Duration,
    per_server: &[Option<Attempt>],
    silent: &mut [Vec<&'m str>],
    notes: &mut Vec<String>,
) {
    let name = module.name();
    if let Some((s, Some(Attempt::Fetched { bytes, elapsed }))) =
        per_server.iter().enumerate().find(|(_, a)| matches!(a, Some(Attempt::Fetched { .. })))
    {
        match entry.lookup(id, ttl) {
            Lookup::Hit(elf) => {
                if let Ok(e) = module.elf() {
                    e.set_fetched_debug_file(*elf);
                }
                notes.push(format!(
                    "debuginfod: fetched {name} debug info from {} in {} ms ({})",
                    config.servers[s],
                    elapsed.as_millis(),
                    size(*bytes)
                ));
            }
            _ => notes
                .push(format!("debuginfod: {name}: the file fetched is no longer usable in {}", entry.dir.display())),
        }
        return;
    }
    let mut not_found = Vec::new();
    for (server, attempt) in config.servers.iter().zip(per_server) {
        match attempt {
            None | Some(Attempt::TimedOut) => {}
            Some(Attempt::NotFound) => not_found.push(server.as_str()),
            Some(Attempt::TooLarge) => notes.push(format!(
                "debuginfod: {name} debug info on {server} is larger than {}: not fetched",
                size(config.max_size)
            )),
            Some(Attempt::Rejected(why)) => {
                notes.push(format!("debuginfod: {server} sent a file for {name} that was not used: {why}"))
            }
            Some(Attempt::Failed(why)) => notes.push(format!("debuginfod: {server} failed for {name}: {why}")),
            Some(Attempt::Superseded) | Some(Attempt::Fetched { .. }) => {}
        }
    }
    for (s, attempt) in per_server.iter().enumerate() {
        if matches!(attempt, None | Some(Attempt::TimedOut)) {
            silent[s].push(name);
        }
    }
    if not_found.len() == config.servers.len() {
        // Every server said 404: recorded as elfutils records it, so neither asks again soon.
        let _ = entry.record_miss();
    }
    if !not_found.is_empty() {
        notes.push(format!(
            "debuginfod: no debug info for {name} (build-id {}) on {}",
            verify::short(&hex(id)),
            not_found.join(", ")
        ));
    }
}

/// The modules holding one of `pcs` that have a build-id but no debug information here, in
/// the order first met, with their build-ids.
fn missing(modules: &ModuleSet, pcs: impl IntoIterator<Item = u64>) -> Vec<(&Module, Vec<u8>)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for pc in pcs {
        let Some(m) = modules.find(pc) else { continue };
        if !seen.insert(m.start) || m.host_path.is_none() {
            continue;
        }
        let Ok(elf) = m.elf() else { continue };
        if elf.has_dwarf() || elf.local_debug_file().is_some() {
            continue;
        }
        match elf.build_id() {
            Some(id) if !id.is_empty() && id.len() <= verify::MAX_BUILD_ID => out.push((m, id.to_vec())),
            _ => {}
        }
    }
    out
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{} kB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_for_people() {
        assert_eq!(seconds(Duration::from_secs(3)), "3 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(4096), "4 kB");
        assert_eq!(size(5 << 20), "5.0 MB");
    }
}
