//! Frames: native and Python, how a native frame was found, and what a frame is (a system
//! library's, the interpreter's, the user's own code): the few heuristics every stage and every
//! renderer share, in one place.

use serde::{Deserialize, Serialize};

use super::Hex;

/// A frame of a thread's stack: native or Python.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Frame {
    /// A native frame.
    Native(NativeFrame),
    /// A Python frame.
    Python(PythonFrame),
}

/// How a native frame was found: the unwinder's ([`crate::unwind::Trust`]).
pub use crate::unwind::Trust;

/// A native frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeFrame {
    /// The instruction (innermost frame, or after a signal frame) or the return address.
    pub address: Hex,
    /// Full path of the module, as the process sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// `address` relative to the module's first mapping (what `addr2line -e` takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_offset: Option<Hex>,
    /// Demangled function name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// `address` relative to the function's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_offset: Option<Hex>,
    /// The source file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The source line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Functions inlined at this address, innermost first; `function` is the one they were inlined into.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlined: Vec<InlinedFrame>,
    /// How it was found.
    pub trust: Trust,
    /// The stack pointer in this frame, as unwound: its locals lie from here up to the next
    /// frame's. Not part of the report.
    #[serde(skip)]
    pub sp: Option<u64>,
}

/// A function inlined at a native frame's address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InlinedFrame {
    /// Its name.
    pub function: String,
    /// Its source file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of the call in it (or, innermost, of the address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// A Python frame.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PythonFrame {
    /// `co_filename`.
    pub file: String,
    /// The qualified name from 3.11 on, the plain name before.
    pub function: String,
    /// The line it is at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Where the running expression ends and its columns (3.11+, as `co_positions` gives
    /// them: 0-based UTF-8 byte offsets into their lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    /// The expression's first column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// The column after its last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
    /// The source line, when the file could be read (without its indentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Bytes of indentation left out of `source`: where it starts in the file's line, so that
    /// `column` can be placed under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_offset: Option<u32>,
    /// Read while the interpreter was finalizing from a thread that was not running it: may be stale.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// Arguments and locals: every one with `--locals`; by default only the arguments of the
    /// crashed thread's innermost frames, shown safely (no string contents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locals: Vec<Local>,
    /// Why `locals` is incomplete, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locals_note: Option<String>,
}

/// What a frame's variable is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalKind {
    /// An argument.
    Argument,
    /// A local variable.
    Local,
    /// A variable shared with an inner function (a cell or free variable).
    Cell,
}

/// One argument or local variable of a Python frame, as read from memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Local {
    /// Its name.
    pub name: String,
    /// Argument, local or cell.
    pub kind: LocalKind,
    /// The value's type name (`int`, `NoneType`, `mymod.Foo`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Python's repr where it is safe and short (`None`, `42`, `'abc'`, `[1, 2, ...]`), else
    /// `<list, 10 items>` or `<Foo object at 0x...>`; `<unbound>` before assignment.
    pub repr: String,
    /// The length of a str, bytes or container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// Libraries whose faults are usually the caller's bug (strlen(NULL)): the culprit also names
/// the first frame outside them. libffi is call glue (ctypes, cffi): the caller beyond it is the
/// one that matters.
const SYSTEM_LIBRARIES: &[&str] = &[
    "libc.so",
    "libc-",
    "ld-linux",
    "libpthread",
    "libm.so",
    "libdl.so",
    "librt.so",
    "libstdc++",
    "libgcc_s",
    "[vdso]",
    "libc.musl",
    "ld-musl",
    "libffi.so",
];

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A module path that is a system library (see `SYSTEM_LIBRARIES`).
pub fn is_system_module(path: &str) -> bool {
    let name = file_name(path);
    SYSTEM_LIBRARIES.iter().any(|p| name.starts_with(p))
}

/// A module path that is the Python interpreter itself (libpython, or a static python binary).
pub fn is_python_runtime(path: &str) -> bool {
    let name = file_name(path);
    name.starts_with("libpython") || name.starts_with("python")
}

/// A Python file that belongs to the user's code rather than the standard library or an
/// installed package.
pub fn is_user_file(file: &str) -> bool {
    if file.starts_with('<') {
        // `python -c` code, the interactive prompt and the source a subinterpreter runs
        // (`<string>` up to 3.13, `<script>` from 3.14's `Interpreter.exec`) are the user's;
        // `<frozen ...>` modules are not.
        return matches!(file, "<string>" | "<stdin>" | "<script>") || file.starts_with("<ipython-input");
    }
    if file.contains("/site-packages/") || file.contains("/dist-packages/") {
        return false;
    }
    // The standard library: .../lib/pythonX.Y/<module>
    if let Some(pos) = file.find("/lib/python") {
        let rest = &file[pos + "/lib/python".len()..];
        if rest.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !file.contains("/lib64/python")
}

impl NativeFrame {
    /// A frame known only by its address (and how it was found).
    pub fn at(address: u64, trust: Trust) -> Self {
        NativeFrame {
            address: Hex(address),
            module: None,
            module_offset: None,
            function: None,
            function_offset: None,
            file: None,
            line: None,
            inlined: Vec::new(),
            trust,
            sp: None,
        }
    }

    /// The short module name (`libc.so.6`).
    pub fn module_name(&self) -> Option<&str> {
        self.module.as_deref().map(file_name)
    }

    /// In a system library (libc, the loader, libffi, ...).
    pub fn in_system_library(&self) -> bool {
        self.module.as_deref().is_some_and(is_system_module)
    }

    /// `func in libfoo.so (foo.c:12)`; the innermost inlined function when there is one.
    pub fn describe(&self) -> String {
        let mut s = match (&self.function, self.inlined.first(), self.module_name(), self.module_offset) {
            (_, Some(inl), Some(m), _) => format!("{} in {m}", inl.function),
            (Some(n), None, Some(m), _) => format!("{n} in {m}"),
            (None, None, Some(m), Some(off)) => format!("an unnamed function in {m} (+{off})"),
            (None, None, Some(m), None) => format!("an unnamed function in {m} (at {})", self.address),
            (_, Some(inl), None, _) => inl.function.clone(),
            (Some(n), None, None, _) => n.clone(),
            (None, None, _, _) => format!("{} (in no known module)", self.address),
        };
        let (file, line) = match self.inlined.first() {
            Some(i) => (i.file.as_deref(), i.line),
            None => (self.file.as_deref(), self.line),
        };
        if let Some(loc) = location(file, line) {
            s.push_str(&format!(" ({loc})"));
        }
        s
    }
}

impl PythonFrame {
    /// The user's own code (not the standard library or an installed package).
    pub fn is_user_code(&self) -> bool {
        is_user_file(&self.file)
    }
}

/// The Python file relative to the project: under `root`, the path below it; in an installed
/// package, the path below `site-packages`/`dist-packages`; in the standard library, the path
/// below `lib/pythonX.Y`; elsewhere (a temporary folder) the file name alone. `<string>` and
/// the like stay as they are.
pub fn project_path(file: &str, root: Option<&std::path::Path>) -> String {
    if !file.starts_with('/') {
        return file.trim_start_matches("./").to_string();
    }
    if let Some(rel) = root.and_then(|r| std::path::Path::new(file).strip_prefix(r).ok()).and_then(|r| r.to_str()) {
        if !rel.is_empty() && !rel.contains("/site-packages/") && !rel.contains("/dist-packages/") {
            return rel.to_string();
        }
    }
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(i) = file.rfind(marker) {
            return file[i + marker.len()..].to_string();
        }
    }
    for marker in ["/lib/python", "/lib64/python"] {
        if let Some(i) = file.rfind(marker) {
            let rest = &file[i + marker.len()..];
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                if let Some(j) = rest.find('/') {
                    return rest[j + 1..].to_string();
                }
            }
        }
    }
    file.rsplit('/').next().unwrap_or(file).to_string()
}

/// The last two components of a native source path: `Python/ceval.c`, not the build folder.
pub fn short_source(path: &str) -> &str {
    let mut idx = path.len();
    for _ in 0..2 {
        match path[..idx].rfind('/') {
            Some(i) => idx = i,
            None => return path.trim_start_matches("./"),
        }
    }
    &path[idx + 1..]
}

/// `Python/ceval.c:12`, from a source path and a line.
pub fn location(file: Option<&str>, line: Option<u32>) -> Option<String> {
    let f = short_source(file?);
    Some(match line {
        Some(l) => format!("{f}:{l}"),
        None => f.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_files_relative_to_the_project() {
        let root = Some(std::path::Path::new("/ws/proj"));
        assert_eq!(project_path("/ws/proj/tests/t.py", root), "tests/t.py");
        assert_eq!(project_path("/ws/proj/.venv/lib/python3.11/site-packages/np/core.py", root), "np/core.py");
        assert_eq!(project_path("/usr/lib/python3/dist-packages/np/core.py", root), "np/core.py");
        assert_eq!(project_path("/py/3.12/lib/python3.12/ctypes/__init__.py", root), "ctypes/__init__.py");
        assert_eq!(project_path("/tmp/.tmpXYZ/crash.py", root), "crash.py");
        assert_eq!(project_path("./t.py", root), "t.py");
        assert_eq!(project_path("<string>", root), "<string>");
        assert_eq!(project_path("/ws/proj/t.py", None), "t.py");
    }

    #[test]
    fn whose_code_a_python_file_is() {
        for user in ["/ws/proj/t.py", "<string>", "<stdin>", "<script>", "<ipython-input-3-abc>"] {
            assert!(is_user_file(user), "{user}");
        }
        for not in ["<frozen importlib._bootstrap>", "/py/lib/python3.14/threading.py", "/v/site-packages/np/a.py"] {
            assert!(!is_user_file(not), "{not}");
        }
    }
}
