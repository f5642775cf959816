//! A process's descendants (children, grandchildren...), listed from /proc for `dump
//! --subprocesses`: through each thread's `children` file where the kernel has them, otherwise
//! from the parent pid of every process in /proc. Every file is read through the input door
//! (files.rs), capped in size and count; the caller runs the walk on a watched thread.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::files;

/// Most processes one walk returns, the first process included.
pub const MAX_PROCESSES: usize = 256;
/// Most entries of /proc looked at when the parent of every process has to be read.
const MAX_SCANNED: usize = 1 << 17;
/// Most bytes read of one `stat` or `children` file (a children file lists one pid per child:
/// 8 bytes each for far more children than [`MAX_PROCESSES`]).
const MAX_FILE: u64 = 64 << 10;

/// One process of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its pid.
    pub pid: i32,
    /// Its parent (0 for the first process when /proc does not say).
    pub parent: i32,
    /// 0 for the first process, 1 for its children, ...
    pub depth: u32,
}

/// The state letter of /proc/PID/stat, as a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Running, sleeping, stopped, traced: a process whose stacks can be read.
    Alive,
    /// Exited and not yet reaped by its parent: no stacks left (`Z`).
    Zombie,
    /// Being torn down (`X`), or gone from /proc.
    Gone,
}

/// The state and parent pid in the text of /proc/PID/stat. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so the fields are counted from the
/// last `)`.
pub fn parse_stat(text: &str) -> Option<(char, i32)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn stat_of(pid: i32) -> Option<(char, i32)> {
    let bytes = files::read_proc(Path::new(&format!("/proc/{pid}/stat")), MAX_FILE)?;
    parse_stat(&String::from_utf8_lossy(&bytes))
}

/// Whether `pid` can be dumped now, is a zombie, or is gone.
pub fn state(pid: i32) -> RunState {
    match stat_of(pid) {
        Some(('Z', _)) => RunState::Zombie,
        Some(('X' | 'x', _)) | None => RunState::Gone,
        Some(_) => RunState::Alive,
    }
}

/// The pids in a `children` file's text (space-separated).
pub fn parse_children(text: &str) -> Vec<i32> {
    text.split_ascii_whitespace().filter_map(|p| p.parse().ok()).filter(|&p| p > 0).collect()
}

/// Numeric entries of a /proc folder, at most `cap`, sorted.
fn numeric_entries(dir: &Path, cap: usize) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<i32> =
        entries.take(cap).filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|&p| p > 0).collect();
    v.sort_unstable();
    v
}

/// Where the children of a process are looked up.
enum Children {
    /// /proc/PID/task/TID/children (kernels built with CONFIG_PROC_CHILDREN).
    Files,
    /// Every process's parent, read once from /proc/N/stat.
    ByParent(HashMap<i32, Vec<i32>>),
}

impl Children {
    fn new(root: i32) -> Children {
        let probe: PathBuf = format!("/proc/{root}/task/{root}/children").into();
        if super::blocking::exists(&probe) {
            return Children::Files;
        }
        let mut by_parent: HashMap<i32, Vec<i32>> = HashMap::new();
        for pid in numeric_entries(Path::new("/proc"), MAX_SCANNED) {
            if let Some((_, ppid)) = stat_of(pid) {
                by_parent.entry(ppid).or_default().push(pid);
            }
        }
        Children::ByParent(by_parent)
    }

    /// The children of `pid`, sorted.
    fn of(&self, pid: i32) -> Vec<i32> {
        let mut v = match self {
            Children::ByParent(m) => m.get(&pid).cloned().unwrap_or_default(),
            Children::Files => numeric_entries(Path::new(&format!("/proc/{pid}/task")), MAX_SCANNED)
                .into_iter()
                .filter_map(|tid| files::read_proc(Path::new(&format!("/proc/{pid}/task/{tid}/children")), MAX_FILE))
                .flat_map(|b| parse_children(&String::from_utf8_lossy(&b)))
                .collect(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Walks the tree under `root`, depth first (a parent before its children, children by pid),
/// calling `found` with each process, `root` first, until `cap` processes were found. Returns
/// whether the tree had more than that. Each pid is given once, even if pid reuse makes a loop.
/// The calling process is left out (`crashcatch dump --subprocesses $$` from a shell), with
/// anything under it.
pub fn walk(root: i32, cap: usize, found: &mut dyn FnMut(Member)) -> bool {
    let children = Children::new(root);
    let parent = stat_of(root).map_or(0, |(_, p)| p);
    let mut seen: HashSet<i32> = HashSet::new();
    if root != std::process::id() as i32 {
        seen.insert(std::process::id() as i32);
    }
    let mut given = 0;
    let mut stack = vec![Member { pid: root, parent, depth: 0 }];
    while let Some(m) = stack.pop() {
        if !seen.insert(m.pid) {
            continue;
        }
        if given == cap {
            return true;
        }
        given += 1;
        found(m);
        // Pushed in reverse so the smallest pid is walked first.
        for c in children.of(m.pid).into_iter().rev() {
            if !seen.contains(&c) {
                stack.push(Member { pid: c, parent: m.pid, depth: m.depth + 1 });
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_fields_are_counted_from_the_last_parenthesis() {
        assert_eq!(parse_stat("42 (python3) S 7 42 42 0 -1"), Some(('S', 7)));
        assert_eq!(parse_stat("42 (a) Z (b) R 9 1 1"), Some(('R', 9)));
        assert_eq!(parse_stat("42 (x) Z 1"), Some(('Z', 1)));
        assert_eq!(parse_stat("42 (x"), None);
        assert_eq!(parse_stat("42 (x) S notapid"), None);
    }

    #[test]
    fn a_children_file_is_a_list_of_pids() {
        assert_eq!(parse_children("12 13 400 \n"), vec![12, 13, 400]);
        assert_eq!(parse_children(""), Vec::<i32>::new());
        assert_eq!(parse_children("5 x -3 0 6"), vec![5, 6]);
    }

    #[test]
    fn this_process_and_a_child_and_a_grandchild_are_found_once_each() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        let me = std::process::id() as i32;
        let mut found = Vec::new();
        let cut = walk(me, MAX_PROCESSES, &mut |m| found.push(m));
        // A cap cuts the walk and says so.
        let mut two = Vec::new();
        let cut_at_two = walk(me, 2, &mut |m| two.push(m));
        let _ = std::process::Command::new("kill").arg(grandchild.to_string()).status();
        let _ = child.wait();
        assert!(cut_at_two);
        assert_eq!(two.len(), 2);
        assert!(!cut);
        assert_eq!(found[0].pid, me);
        assert_eq!(found[0].depth, 0);
        let c = found.iter().find(|m| m.pid == child.id() as i32).expect("the child");
        assert_eq!((c.parent, c.depth), (me, 1));
        let g = found.iter().find(|m| m.pid == grandchild).expect("the grandchild");
        assert_eq!((g.parent, g.depth), (child.id() as i32, 2));
        let mut pids: Vec<i32> = found.iter().map(|m| m.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), found.len());
    }
}
