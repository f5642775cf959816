//! The Sentry event payload, typed: the parts crashcatch fills, as Sentry's developer
//! documentation (develop.sentry.dev, "Event Payloads") and its ingestion (Relay) define them.
//! Serialized with serde; every optional field is left out when empty. No field here is named
//! differently from the protocol, so a reader of the protocol's documentation reads this file.

use std::collections::BTreeMap;

use serde::Serialize;

/// One error event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// 32 hex digits, derived from the report (see [`super::event_id`]).
    pub event_id: String,
    /// RFC 3339, UTC: when the signal was caught (left to the tracker when the report's is not one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// `native`: frames with an `instruction_addr` are symbolicated by the tracker.
    pub platform: &'static str,
    pub level: Level,
    pub logger: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// The pytest test that was running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Makes the tracker group exactly as crashcatch does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fingerprint: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub exception: Values<Exception>,
    #[serde(skip_serializing_if = "Values::is_empty")]
    pub threads: Values<Thread>,
    #[serde(skip_serializing_if = "DebugMeta::is_empty")]
    pub debug_meta: DebugMeta,
    pub contexts: Contexts,
    pub sdk: Sdk,
}

/// `fatal` for crashes, `error` for hangs and test timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Fatal,
    Error,
}

/// `{"values": [...]}`, the protocol's list wrapper.
#[derive(Debug, Clone, Serialize)]
pub struct Values<T> {
    pub values: Vec<T>,
}

impl<T> Values<T> {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Exception {
    /// The signal's name (`SIGSEGV`), or `TestTimeout` / `Hang`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The report's summary line.
    pub value: String,
    /// The thread the stack trace below belongs to (in `threads`, without a stack trace of its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u64>,
    pub mechanism: Mechanism,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<Stacktrace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mechanism {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub handled: bool,
    /// A crash's type (`SIGSEGV`) says little: the tracker titles the issue by its frames.
    pub synthetic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<MechanismMeta>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MechanismMeta {
    pub signal: PosixSignal,
}

#[derive(Debug, Clone, Serialize)]
pub struct PosixSignal {
    pub number: i32,
    pub code: i32,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_name: Option<String>,
}

/// Frames oldest first (the caller before the callee), the innermost last.
#[derive(Debug, Clone, Serialize)]
pub struct Stacktrace {
    pub frames: Vec<Frame>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub registers: BTreeMap<String, String>,
    /// `all_but_first`: the innermost address is where the thread stopped, the others are return
    /// addresses, which the tracker moves back into the call before symbolicating.
    pub instruction_addr_adjustment: &'static str,
    /// A thread caught as it was, not the one that raised the event (the other threads, hangs).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Frame {
    /// `python` for Python frames; native frames take the event's platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The Python module path or nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The native module's path (`/usr/lib/x86_64-linux-gnu/libc.so.6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    pub in_app: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol_addr: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Thread {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub crashed: bool,
    pub current: bool,
    pub main: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<Stacktrace>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DebugMeta {
    pub images: Vec<DebugImage>,
}

impl DebugMeta {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

/// An ELF module as a debug image.
#[derive(Debug, Clone, Serialize)]
pub struct DebugImage {
    /// `elf`
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// The build-id, in hex.
    pub code_id: String,
    /// The build-id's first 16 bytes as a little-endian GUID (see [`super::images::debug_id`]).
    pub debug_id: String,
    pub code_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_file: Option<String>,
    pub image_addr: String,
    pub image_size: u64,
    /// The file address the image's first mapping stands for, when it is not 0 (non-PIE programs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_vmaddr: Option<String>,
    pub arch: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Contexts {
    pub os: OsContext,
    pub device: DeviceContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeContext>,
    pub crashcatch: CrashcatchContext,
}

#[derive(Debug, Clone, Serialize)]
pub struct OsContext {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceContext {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub arch: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeContext {
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub name: &'static str,
    pub version: String,
}

/// What the report says that has no field of its own in the protocol.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrashcatchContext {
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// `crash` or `hang`.
    pub kind: &'static str,
    pub pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faulted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub called_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_call_site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// The CI run or job's page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the event leaves out to stay within the tracker's size limit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sdk {
    pub name: &'static str,
    pub version: &'static str,
}
