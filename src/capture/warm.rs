//! Before a process that is not dying is stopped (`dump`, hang dumps, test timeouts), the file
//! work its report will need is done while it still runs: the interpreter is found and the
//! symbols the Python stage looks up by name are read from its files (remembered across reports:
//! modules/symbols.rs). The stop then only covers reading memory. On a watched thread with a
//! short deadline: a hung file costs at most that, and nothing the warm-up finds is trusted
//! (the read phase looks at the stopped process again; only file lookups are reused).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::worker::STUCK_AFTER;
use super::Options;
use crate::process::blocking::{self, Fence};
use crate::process::live::LiveProcess;
use crate::process::{CachedMemory, SignalInfo};

/// The longest a warm-up may take before the process is stopped anyway.
const WARM_TIME: Duration = Duration::from_millis(500);

/// Warms the file lookups of a capture of process `pid`.
pub fn warm(pid: i32, options: &Options) {
    if options.no_python {
        return;
    }
    let opts = options.clone();
    let fence = Arc::new(RwLock::new(Fence::default()));
    let work = move || {
        let live = LiveProcess::new(pid);
        let snap = live.snapshot(&live.memory, 0, SignalInfo::default(), Vec::new());
        let modules = super::modules_of(&snap, &opts);
        let mem = CachedMemory::new(snap.memory);
        let _ = crate::python::discover::find(&snap, &modules, &mem);
    };
    let _ = blocking::watched("cc-warm", fence, work, STUCK_AFTER, Instant::now() + WARM_TIME, &|| false);
}
