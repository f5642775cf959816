#!/usr/bin/env bash
# What debuginfod costs a report: Debian's stripped python3.11 (make py311dbg) crashes in
# ctypes under target/release/crashcatch (make build); elfutils' debuginfod on 127.0.0.1 serves
# python3.11-dbg's files. Prints medians of N runs (default 5) of total_ms and symbolize_ms for:
# fetching into an empty cache, the cache filled, and the same files found locally by
# --debug-dir (no debuginfod). Usage: scripts/bench-debuginfod.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
cc=target/release/crashcatch py=target/py311dbg/run-python3.11 dbg=target/py311dbg/usr/lib/debug
for f in "$cc" "$py"; do [[ -x $f ]] || { echo "missing $f (make build py311dbg)" >&2; exit 1; }; done
tmp=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
debuginfod -F -L -t 0 -g 0 -c 1 -p "$port" -d "$tmp/db.sqlite" "$dbg" >"$tmp/log" 2>&1 &
server=$!
id=$(python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); i=b.find(b"GNU\0"); print(b[i+4:i+24].hex())' target/py311dbg/usr/bin/python3.11)
for _ in $(seq 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/buildid/$id/debuginfo") == 200 ]] && break
    sleep 0.2
done
printf 'import ctypes\nctypes.string_at(0)\n' >"$tmp/crash.py"
report() { # prints "total_ms symbolize_ms first-debuginfod-note"
    { "$@" --format json -- "$py" "$tmp/crash.py" 2>&1 || :; } 2>/dev/null | python3 -c '
import json, sys
t = sys.stdin.read(); d = json.loads(t[t.index("{"):t.rindex("}") + 1]); tm = d["timings"]
notes = [n for n in d.get("notes", []) if "fetched" in n or "from the cache" in n]
print(tm["total_ms"], tm["symbolize_ms"], notes[0] if notes else "-")'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # label, then the crashcatch command
    local label=$1; shift
    : >"$tmp/r"
    for _ in $(seq "$n"); do
        [[ $label == fetch ]] && rm -rf "$tmp/cache"
        report "$@" >>"$tmp/r"
    done
    printf '%-10s total_ms %8s  symbolize_ms %8s  %s\n' "$label" "$(cut -d' ' -f1 "$tmp/r" | median)" \
        "$(cut -d' ' -f2 "$tmp/r" | median)" "$(tail -1 "$tmp/r" | cut -d' ' -f3-)"
}
export DEBUGINFOD_CACHE_PATH=$tmp/cache
DEBUGINFOD_URLS=http://127.0.0.1:$port run fetch "$cc"
DEBUGINFOD_URLS=http://127.0.0.1:$port run cached "$cc"
DEBUGINFOD_URLS= run debug-dir "$cc" --debug-dir "$dbg"
