#!/bin/sh
# The live aarch64 tests, run inside the arm64 virtual machine by its /init (busybox sh):
# crashcatch on the C fixtures and on real Python crashes. Each case prints its report and a
# PASS or FAIL line; the last line is `aarch64: N passed, M failed`.
# Files: /cc/crashcatch, /cc/fixtures/VARIANT/*, /cc/faults (stress/src/faults.c), /cc/pyext/ccext*.so, /cc/py/*.py, pytest in
# /cc/site (PYTHONPATH).
passed=0
failed=0
PY=/usr/bin/python3.11
export PYTHONPATH=/cc/site:/cc/pyext
export PYTHONDONTWRITEBYTECODE=1

# case NAME EXPECTED_STATUS 'PATTERN|PATTERN...' -- COMMAND...: runs COMMAND under crashcatch,
# shows the report, checks the status and that every pattern is in the text report.
case_() {
    name=$1 want=$2 patterns=$3
    shift 4
    echo "=== $name: crashcatch -- $*"
    rm -rf /tmp/out && mkdir -p /tmp/out
    ${CRASHCATCH:-/cc/crashcatch} --output-dir /tmp/out -- "$@" > /tmp/stdout 2> /tmp/stderr
    status=$?
    cat /tmp/stderr
    verdict "$name" "$status" "$want" "$patterns" /tmp/out/crash-*.txt
}

# verdict NAME STATUS WANT PATTERNS FILE
verdict() {
    ok=1 why=""
    if [ "$2" != "$3" ]; then ok=0 why="status $2, expected $3"; fi
    old_ifs=$IFS
    IFS='|'
    for p in $4; do
        if ! grep -q -- "$p" $5 2> /dev/null; then ok=0 why="$why; report lacks '$p'"; fi
    done
    IFS=$old_ifs
    if [ $ok = 1 ]; then
        passed=$((passed + 1))
        echo "PASS $1"
    else
        failed=$((failed + 1))
        echo "FAIL $1:$why"
    fi
}

F=/cc/fixtures
for v in fp nofp; do
    case_ "null_deref ($v)" 139 'SIGSEGV|NULL pointer dereference|cc_fixture_crash_null|run_job|null_deref.c' -- $F/$v/null_deref
    case_ "abort_assert ($v)" 134 'SIGABRT|assertion failed|main' -- $F/$v/abort_assert assert
    case_ "thread_crash ($v)" 139 'SIGSEGV|crashed' -- $F/$v/thread_crash
done
case_ "fault in a signal handler" 139 'on_usr1|__kernel_rt_sigreturn|faults.c:210|main' -- /cc/faults handler
case_ "recursion (nofp)" 139 'stack overflow' -- $F/nofp/recursion

case_ "python ctypes NULL into strlen" 139 'SIGSEGV|NULL pointer|string_at|ctypes_null.py:4|return ctypes.string_at(0)|CPython 3.11' -- $PY /cc/py/ctypes_null.py
case_ "python C extension" 139 'SIGSEGV|ccext_crash_here|ext_crash.py:5|CPython 3.11' -- $PY /cc/py/ext_crash.py
case_ "pytest with a crashing test" 139 'test_crash.py::test_boom|test_crash.py:6|SIGSEGV' -- $PY -m pytest -q -p no:cacheprovider /cc/py/test_crash.py

# The wheels' binaries (make wheels; scripts/aarch64-vm.sh puts them in): the manylinux one on
# this glibc 2.36, the static musl one on a glibc Python.
for tag in manylinux_2_17_aarch64 musllinux_1_2_aarch64; do
    if [ ! -x /cc/crashcatch-$tag ]; then
        failed=$((failed + 1))
        echo "FAIL wheel $tag: /cc/crashcatch-$tag is missing"
        continue
    fi
    CRASHCATCH=/cc/crashcatch-$tag case_ "wheel $tag: python ctypes" 139 'SIGSEGV|ctypes_null.py:4|CPython 3.11' -- $PY /cc/py/ctypes_null.py
done

# attach: a Python process that waits for /tmp/go, then crashes.
echo "=== attach"
rm -rf /tmp/out /tmp/go /tmp/ready && mkdir -p /tmp/out
$PY /cc/py/wait_crash.py &
pid=$!
i=0
while [ ! -e /tmp/ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
/cc/crashcatch attach --output-dir /tmp/out $pid > /tmp/stdout 2> /tmp/stderr &
att=$!
i=0
# crashcatch says it attached on stderr before the crash is let go.
while ! grep -q -i attach /tmp/stderr 2> /dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1
touch /tmp/go
wait $att
status=$?
wait $pid 2> /dev/null
cat /tmp/stderr
# attach's status is the process's end: 128+11 for the SIGSEGV it was killed by.
verdict "attach" "$status" 139 'SIGSEGV|wait_crash.py:9|string_at' /tmp/out/crash-*.txt

# dump: every thread's stack of a live Python process, which goes on running.
echo "=== dump"
rm -f /tmp/ready
$PY /cc/py/sleeper.py &
pid=$!
i=0
while [ ! -e /tmp/ready ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
/cc/crashcatch dump $pid > /tmp/dump.txt 2>&1
status=$?
cat /tmp/dump.txt
alive=1
kill -0 $pid 2> /dev/null || alive=0
kill $pid 2> /dev/null
verdict "dump" "$status$alive" 01 'sleeper.py:6|in nap|sleeper.py:9' /tmp/dump.txt

echo "aarch64: $passed passed, $failed failed"
