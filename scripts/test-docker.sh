#!/usr/bin/env bash
# make test-docker: examples/docker/Dockerfile built and run in a real Docker engine, with the
# checks of what the example promises (examples/docker/README.md):
#   - the tests pass: exit 0;
#   - a crash as PID 1: status 139 and the report in a bind-mounted folder owned by a non-root
#     uid (a CI runner's checkout), crashcatch as root; and the same with --user of that uid;
#   - `docker stop` gives 143 (SIGTERM forwarded; docker's SIGKILL would give 137);
#   - orphans are reaped (no zombie left; with python as PID 1 instead, there is one);
#   - `pytest -n 2` (pytest-xdist) with a crashing test: the report names the test;
#   - `crashcatch dump` from `docker exec` of another process, with --cap-add SYS_PTRACE;
#   - with CRASHCATCH_DOCKER_SOURCE=1, the default WHEEL=source image too (network, minutes).
# Ends with `docker: N passed, M failed` (exit 1 when M > 0), or one `docker: SKIP (why)` line
# and exit 0 where no engine can start.
#
# The engine: a running one (docker info answers) is used as it is; otherwise dockerd (Debian's
# docker.io, scripts/install-docker.sh) is started here with its data under target/docker/data,
# no bridge and no iptables rules, and stopped at the end. Containers run with --network none.
# No registry image can be pulled: the base image is Debian (the host's suite) made with
# debootstrap from the archive apt uses (/etc/apt/sources.list.d), with python3 and pip, and
# pytest, pytest-xdist and maturin as wheels downloaded on the host (PIP_FIND_LINKS,
# PIP_NO_INDEX) and the host's CA bundle, then `docker import`ed. The example is built with --build-arg BASE=<that image> WHEEL=prebuilt:
# the manylinux2014 wheel of `make wheels` for this machine, installed offline.
set -uo pipefail
cd "$(dirname "$0")/.."
work=target/docker
venv=${VENV:-target/venv}
t0=$(date +%s)
say() { echo "docker: [$(($(date +%s) - t0))s] $*"; }
skip() {
  echo "docker: SKIP ($*)"
  exit 0
}
die() {
  echo "docker: $*" >&2
  echo "docker: 0 passed, 1 failed"
  exit 1
}
mkdir -p "$work"

# --- The engine.
own_dockerd=
engine_dir=
stop_engine() {
  if [[ -n $own_dockerd ]]; then
    kill "$own_dockerd" 2> /dev/null
    for _ in $(seq 100); do
      kill -0 "$own_dockerd" 2> /dev/null || break
      sleep 0.1
    done
    kill -0 "$own_dockerd" 2> /dev/null && kill -KILL "$own_dockerd"
    # dockerd stops the containerd it started; make sure nothing of ours is left.
    local c=$engine_dir/exec/containerd/containerd.pid
    if [[ -f $c ]]; then kill "$(cat "$c")" 2> /dev/null; fi
    own_dockerd=
  fi
  [[ -n $engine_dir ]] || return 0
  # What dockerd left mounted there (its network namespace, when it did not stop in time).
  awk -v d="$engine_dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2> /dev/null
  rm -rf "$engine_dir"
}
trap stop_engine EXIT

if ! docker info > /dev/null 2>&1; then
  unset DOCKER_HOST
  if ! docker info > /dev/null 2>&1; then
    scripts/install-docker.sh || skip "no Docker engine, and docker.io could not be installed (needs root and apt-get)"
    # A short path: a unix socket's name is limited to 107 bytes.
    engine_dir=$(mktemp -d /tmp/crashcatch-docker.XXXXXX)
    export DOCKER_HOST=unix://$engine_dir/docker.sock
    # Overlay file systems first; vfs (plain copies: slow, but works on any file system, in a
    # container too) when dockerd cannot start with them.
    for driver in overlay2 vfs; do
      data=$work/data
      [[ $driver == overlay2 ]] || data=$work/data-$driver
      mkdir -p "$data"
      say "starting dockerd ($driver, data under $data, log $work/dockerd.log)"
      dockerd --data-root "$PWD/$data" --exec-root "$engine_dir/exec" --pidfile "$engine_dir/dockerd.pid" \
        -H "$DOCKER_HOST" --storage-driver "$driver" --bridge=none --iptables=false --ip-forward=false \
        --ip-masq=false > "$work/dockerd.log" 2>&1 &
      own_dockerd=$!
      for _ in $(seq 300); do
        docker info > /dev/null 2>&1 && break
        kill -0 "$own_dockerd" 2> /dev/null || break
        sleep 0.1
      done
      docker info > /dev/null 2>&1 && break
      why=$(grep -E 'level=(fatal|error)|failed to start' "$work/dockerd.log" | tail -1 | sed 's/.*msg="\([^"]*\)".*/\1/')
      say "dockerd ($driver) did not start: ${why:-no answer within 30 s}"
      stop_engine
      mkdir -p "$engine_dir"
    done
    docker info > /dev/null 2>&1 ||
      skip "dockerd did not start here: ${why:-no answer within 30 s} (log: $work/dockerd.log)"
  fi
fi
# Dockerfile.dockerignore and the stage WHEEL does not pick (skipped) need BuildKit: a client
# with buildx, or one before 23.0 (Debian's docker.io), whose own BuildKit client
# DOCKER_BUILDKIT=1 turns on. A client of 23.0+ without buildx refuses to build with BuildKit.
export DOCKER_BUILDKIT=1
docker_cli=
while read -r cli; do
  v=$("$cli" version --format '{{.Client.Version}}' 2> /dev/null | cut -d. -f1)
  if "$cli" buildx version > /dev/null 2>&1 || [[ $v =~ ^[0-9]+$ && $v -lt 23 ]]; then
    docker_cli=$cli
    break
  fi
done < <(type -ap docker)
[[ -n $docker_cli ]] || die "no docker client here can build with BuildKit (install buildx)"
docker() { "$docker_cli" "$@"; }
say "engine: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}' 2> /dev/null) ($docker_cli)"

# --- The base image: the host's Debian suite, debootstrapped from the archive apt uses; or
# CRASHCATCH_DOCKER_BASE (python:3.12-slim, say, where images can be pulled: the build then
# needs the network for the project's requirements).
build_net=none
make_base() {
  . /etc/os-release
  suite=${VERSION_CODENAME:-}
  [[ -n $suite ]] || die "no VERSION_CODENAME in /etc/os-release: cannot choose a suite for debootstrap"
  arch=$(dpkg --print-architecture 2> /dev/null || uname -m)
  # The first apt source of that suite (deb822 .sources or one-line .list), as apt reaches it.
  mirror=$(python3 - "$suite" << 'EOF'
import glob, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        f = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith((" ", "#")):
                k, v = line.split(":", 1)
                f[k.strip().lower()] = v.split()
        if "deb" in f.get("types", []) and suite in f.get("suites", []) and f.get("enabled", ["yes"]) != ["no"]:
            print(f["uris"][0]); sys.exit()
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        w = [x for x in line.split() if not x.startswith("[")]
        if len(w) >= 3 and w[0] == "deb" and w[2] == suite:
            print(w[1]); sys.exit()
EOF
  )
  [[ -n $mirror ]] || die "no apt source for $suite in /etc/apt/sources.list.d: cannot debootstrap"
  # The image holds the wheels of this requirements file and the host's CA bundle: new ones, a
  # new image.
  host_ca=/etc/ssl/certs/ca-certificates.crt
  maturin_pin=$(grep '^maturin==' scripts/venv-requirements.txt)
  base=crashcatch-test-base:$suite-$( (cat examples/docker/project/requirements.txt "$host_ca" 2> /dev/null
    echo "$maturin_pin") | sha256sum | cut -c1-12)
  rootfs=$work/rootfs-$suite
  pywheels=$work/pywheels
  if ! docker image inspect "$base" > /dev/null 2>&1; then
    if [[ ! -f $rootfs/.stamp ]]; then
      command -v debootstrap > /dev/null || scripts/install-docker.sh || die "debootstrap is missing"
      say "debootstrap $suite ($arch) from $mirror into $rootfs"
      rm -rf "$rootfs"
      nice debootstrap --variant=minbase --arch="$arch" --include=python3,python3-pip,python-is-python3 \
        "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 ||
        die "debootstrap failed (log: $work/debootstrap.log): $(tail -1 "$work/debootstrap.log")"
      # As in the python images, pip installs system-wide (PEP 668's marker would refuse it).
      rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      touch "$rootfs/.stamp"
    fi
    pyver=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
      die "python3 does not run in $rootfs"
    # The example project's requirements, and the maturin the wheel-source stage pins, as wheels
    # for that Python, downloaded here (the containers have no network); pip in the image finds
    # them through PIP_FIND_LINKS.
    rm -rf "$pywheels"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
      --python-version "$pyver" --dest "$pywheels" -r examples/docker/project/requirements.txt "$maturin_pin" ||
      die "pip download of examples/docker/project/requirements.txt and $maturin_pin failed"
    rm -rf "$rootfs/opt/wheels"
    cp -r "$pywheels" "$rootfs/opt/wheels"
    # The host's CA bundle (Debian's CAs and whatever this host trusts besides, such as a
    # proxy's): WHEEL=source downloads rustup, maturin and crates over https from the build.
    if [[ -s $host_ca ]]; then cp "$host_ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"; fi
    say "importing $rootfs as $base (Python $pyver)"
    tar -C "$rootfs" --exclude=./.stamp --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -c . |
      docker import --change 'ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheels PIP_DISABLE_PIP_VERSION_CHECK=1' \
        --change 'CMD ["python3"]' - "$base" > /dev/null || die "docker import of $rootfs failed"
    # The base images of earlier requirements or CA bundles.
    docker images crashcatch-test-base --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$base" |
      xargs -r "$docker_cli" rmi > /dev/null 2>&1
  fi
}
if [[ -n ${CRASHCATCH_DOCKER_BASE:-} ]]; then
  base=$CRASHCATCH_DOCKER_BASE
  build_net=default
else
  [[ $(id -u) == 0 ]] || die "debootstrap needs root (or set CRASHCATCH_DOCKER_BASE to a Python image)"
  make_base
fi

# --- The crashcatch wheel for this machine: manylinux2014 (scripts/build-wheels.sh).
host_arch=$(uname -m)
say "building the manylinux2014 $host_arch wheel (scripts/build-wheels.sh)"
nice scripts/build-wheels.sh "$host_arch-unknown-linux-gnu" > "$work/wheel.log" 2>&1 ||
  die "scripts/build-wheels.sh $host_arch-unknown-linux-gnu failed: $(tail -3 "$work/wheel.log")"

wheel=$(grep -o '[^ ]*manylinux_2_17_'"$host_arch"'[^ ]*\.whl' "$work/wheel.log" | tail -1)
[[ -f $wheel ]] || die "no manylinux2014 wheel named in $work/wheel.log"

# --- The example image, as a user builds it (context: the repository root). That wheel, not
# a more specific one target/wheels may hold (make wheel's, which pip would prefer).
image=crashcatch-example-test
say "docker build -f examples/docker/Dockerfile --build-arg BASE=$base --build-arg WHEEL=prebuilt" \
  "--build-arg CRASHCATCH_WHEEL=/tmp/wheels/$(basename "$wheel")"
docker build --network "$build_net" -f examples/docker/Dockerfile --build-arg BASE="$base" --build-arg WHEEL=prebuilt \
  --build-arg CRASHCATCH_WHEEL="/tmp/wheels/$(basename "$wheel")" -t "$image" . > "$work/build.log" 2>&1 ||
  die "docker build failed: $(tail -5 "$work/build.log")"
say "built $image"

# --- The checks.
passed=0
failed=0
pass() {
  echo "ok    $1"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL  $1: $2"
  failed=$((failed + 1))
}
run_dir=$(mktemp -d "$PWD/$work/run.XXXXXX")
# Every container is named crashcatch-test-<this pid>-<what>: removed at the end, whatever happened.
cleanup_run() {
  docker ps -aq --filter "name=crashcatch-test-$$-" | xargs -r "$docker_cli" rm -f > /dev/null 2>&1
  # The example images (the build cache keeps their layers for the next run).
  docker rmi -f "$image" "$image-source" > /dev/null 2>&1
  rm -rf "$run_dir"
  stop_engine
}
trap cleanup_run EXIT
# Files the checks run, mounted read-only at /t.
mkdir -p "$run_dir/t/xdist"
cat > "$run_dir/t/xdist/test_native.py" << 'EOF'
import ctypes


def test_ok():
    pass


def test_crash():
    ctypes.string_at(0)
EOF
cat > "$run_dir/t/orphans.py" << 'EOF'
# A child that forks a grandchild and exits: the grandchild is re-parented to PID 1 and exits;
# only PID 1 can reap it. Prints and exits with the number of zombies left.
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.3)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(2)
zombies = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z":
            zombies.append(pid)
    except OSError:
        pass
print("zombies:", len(zombies))
raise SystemExit(len(zombies))
EOF
cat > "$run_dir/t/busy.py" << 'EOF'
import os


def spin_here():
    n = 0
    while True:
        n += 1


open("/tmp/busy.pid", "w").write(str(os.getpid()))
spin_here()
EOF
chmod -R a+rX "$run_dir/t"
# A folder as a CI runner's checkout has it: owned by the runner's uid (1001 on GitHub, where
# this runs as root; else one's own), 0755.
host_uid=$(id -u)
[[ $host_uid != 0 ]] || host_uid=1001
reports_dir() {
  local d=$run_dir/reports-$1
  mkdir -p "$d"
  chmod 0755 "$d"
  [[ $(id -u) != 0 ]] || chown "$host_uid:$host_uid" "$d"
  echo "$d"
}
drun() { docker run --rm --network none "$@"; }
json_reports() { find "$1" -maxdepth 1 -name 'crash-*.json' 2> /dev/null; }

# The wheel as installed: which one pip chose from target/wheels, the binary on PATH, the pytest
# plugin registered through its entry point.
out=$(drun --entrypoint sh "$image" -c 'command -v crashcatch &&
  sed -n "s/^Tag: //p" "$(python3 -c "import crashcatch, pathlib; print(pathlib.Path(crashcatch.__file__).parent.parent)")"/crashcatch-*.dist-info/WHEEL | tail -1 &&
  pytest --help | grep -c -- --crashcatch-output-dir' 2>&1)
rc=$?
if [[ $rc == 0 && $out == /*crashcatch* ]]; then
  pass "crashcatch on PATH, pytest plugin registered (wheel $(sed -n 2p <<< "$out"))"
else
  fail "the wheel installed" "exit $rc: $(tail -3 <<< "$out")"
fi

# The tests pass: exit 0, nothing reported.
out=$(drun "$image" 2>&1)
rc=$?
if [[ $rc == 0 ]]; then pass "the example's tests pass (exit 0)"; else fail "the example's tests pass" "exit $rc: $(tail -3 <<< "$out")"; fi

# A crash as PID 1, crashcatch as root, the report into the host user's folder.
check_crash() {
  local what=$1 dir=$2
  shift 2
  local out rc report
  out=$(drun -v "$dir:/reports" -e CRASH_DEMO=1 "$@" "$image" 2>&1)
  rc=$?
  report=$(json_reports "$dir" | head -1)
  if [[ $rc != 139 ]]; then
    fail "$what" "exit $rc, not 139: $(tail -3 <<< "$out")"
  elif [[ -z $report ]]; then
    fail "$what" "no report in the mounted folder: $(grep -m1 -i 'crashcatch:.*\(refused\|cannot\|error\)' <<< "$out" || tail -2 <<< "$out")"
  elif ! python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["signal"]["name"] == "SIGSEGV", r["signal"]; assert "test_native_crash" in json.dumps(r), "no test_native_crash"' "$report" 2> "$run_dir/err"; then
    fail "$what" "the report: $(tail -1 "$run_dir/err")"
  else
    pass "$what (139, $(basename "$report"))"
  fi
}
check_crash "crash as PID 1, report into a uid $host_uid folder (0755), crashcatch as root" "$(reports_dir root)"
check_crash "crash as PID 1, report into a uid $host_uid folder, --user $host_uid:$host_uid" "$(reports_dir user)" \
  --user "$host_uid:$host_uid"

# docker stop: SIGTERM forwarded to the command, 143 (128 + 15) as soon as it ends.
name=crashcatch-test-$$-stop
docker run -d --network none --name "$name" "$image" python3 -c 'import time; print("up", flush=True); time.sleep(600)' > /dev/null
for _ in $(seq 100); do
  docker logs "$name" 2>&1 | grep -q '^up' && break
  sleep 0.1
done
stop_timeout=10
s0=$(date +%s.%N)
docker stop -t "$stop_timeout" "$name" > /dev/null
s1=$(date +%s.%N)
rc=$(docker inspect -f '{{.State.ExitCode}}' "$name")
took=$(python3 -c "print('%.2f' % ($s1 - $s0))")
if [[ $rc == 143 ]]; then
  pass "docker stop: 143 in $took s"
else
  fail "docker stop" "exit $rc in $took s, not 143 (137: SIGTERM was not forwarded, docker killed it after ${stop_timeout} s)"
fi
docker rm -f "$name" > /dev/null 2>&1

# Orphans reaped by crashcatch as PID 1; the same with python as PID 1 leaves one (the check
# sees zombies).
out=$(drun -v "$run_dir/t:/t:ro" "$image" python3 /t/orphans.py 2>&1)
rc=$?
ctl=$(drun -v "$run_dir/t:/t:ro" --entrypoint python3 "$image" /t/orphans.py 2>&1)
if [[ $rc == 0 && $out == *"zombies: 0"* && $ctl == *"zombies: "[1-9]* ]]; then
  pass "orphans reaped (${ctl##*$'\n'} with python as PID 1)"
else
  fail "orphans reaped" "under crashcatch: exit $rc, ${out##*$'\n'}; python as PID 1: ${ctl##*$'\n'}"
fi

# pytest -n 2 with a crashing test, reports into the host user's folder as that user.
dir=$(reports_dir xdist)
out=$(drun --user "$host_uid:$host_uid" -v "$dir:/reports" -v "$run_dir/t:/t:ro" "$image" \
  pytest -n 2 -p no:cacheprovider --rootdir /t/xdist /t/xdist 2>&1)
rc=$?
report=$(json_reports "$dir" | head -1)
if [[ $rc != 1 || $out != *"1 failed, 1 passed"* ]]; then
  fail "pytest -n 2 with a crashing test" "exit $rc (want 1, '1 failed, 1 passed'): $(tail -3 <<< "$out")"
elif [[ -z $report ]]; then
  fail "pytest -n 2 with a crashing test" "no report: $(tail -3 <<< "$out")"
elif ! python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); t = r["process"]["test"]; assert t == "test_native.py::test_crash (call)", t' "$report" 2> "$run_dir/err"; then
  fail "pytest -n 2 with a crashing test" "the report's test: $(tail -1 "$run_dir/err")"
else
  pass "pytest -n 2 with a crashing test (exit 1, report names test_native.py::test_crash)"
fi

# crashcatch dump of another process, from docker exec: python started by `docker exec -d` in
# a running container, then `docker exec ... crashcatch dump PID` (neither is the other's
# ancestor). Prints the exit status, then the output.
dump_from_exec() {
  local name=crashcatch-test-$$-dump-$1 pid= out rc
  shift
  docker run -d --network none "$@" --name "$name" -v "$run_dir/t:/t:ro" --entrypoint sleep "$image" 600 > /dev/null
  docker exec -d "$name" python3 /t/busy.py
  for _ in $(seq 100); do
    pid=$(docker exec "$name" cat /tmp/busy.pid 2> /dev/null) && [[ -n $pid ]] && break
    sleep 0.1
  done
  out=$(docker exec "$name" crashcatch dump "${pid:-0}" 2>&1)
  rc=$?
  docker rm -f "$name" > /dev/null 2>&1
  echo "$rc pid=$pid"
  echo "$out"
}
res=$(dump_from_exec cap --cap-add SYS_PTRACE)
rc=${res%% *}
if [[ $rc == 0 && $res == *spin_here* && $res == *busy.py* ]]; then
  pass "crashcatch dump from docker exec (--cap-add SYS_PTRACE): spin_here in busy.py"
else
  fail "crashcatch dump from docker exec (--cap-add SYS_PTRACE)" "exit $(head -6 <<< "$res")"
fi
# Without the capability: refused where Yama's ptrace_scope is 1 (most distributions), allowed
# where there is no Yama (same uid, same capabilities). Said, not checked.
res=$(dump_from_exec nocap)
scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2> /dev/null || echo "none (no Yama)")
say "dump without --cap-add SYS_PTRACE: exit ${res%% *} (this host's Yama ptrace_scope: $scope)"

# WHEEL=source, the default users build: the wheel built in the image from the sources. Needs
# the network (apt, rustup, crates.io: through the host's, with its CA bundle in the base image;
# maturin comes from the base image's wheels) and a release build of crashcatch in the
# container: minutes, so only on request.
if [[ ${CRASHCATCH_DOCKER_SOURCE:-} == 1 ]]; then
  say "docker build --build-arg WHEEL=source --network host (log $work/build-source.log)"
  if ! docker build --network host -f examples/docker/Dockerfile --build-arg BASE="$base" --build-arg WHEEL=source \
    -t "$image-source" . > "$work/build-source.log" 2>&1; then
    fail "WHEEL=source: the image from the sources" "docker build failed: $(tail -5 "$work/build-source.log")"
  else
    dir=$(reports_dir source)
    out=$(drun --user "$host_uid:$host_uid" -v "$dir:/reports" -e CRASH_DEMO=1 "$image-source" 2>&1)
    rc=$?
    plugin=$(drun --entrypoint sh "$image-source" -c 'pytest --help | grep -c -- --crashcatch-output-dir' 2>&1)
    if [[ $rc == 139 && -n $(json_reports "$dir") && $plugin == 1 ]]; then
      pass "WHEEL=source: the image from the sources (pytest plugin registered, crash: 139 and a report)"
    else
      fail "WHEEL=source: the image from the sources" "exit $rc, plugin '$plugin': $(tail -3 <<< "$out")"
    fi
  fi
else
  say "WHEEL=source not built (CRASHCATCH_DOCKER_SOURCE=1 builds it: network and minutes)"
fi

say "checks done"
echo "docker: $passed passed, $failed failed"
((failed == 0))
