# crashcatch: build, test fixtures, test venv, tests.
#
#   make build      the crashcatch binary (release: target/release/crashcatch)
#   make man        man pages from the clap definition: target/man/crashcatch.1, crashcatch-<mode>.1
#   make completions shell completions from it: target/completions/ (bash, zsh, fish)
#   make fixtures   C test fixtures in every build variant, under target/fixtures/<variant>/
#   make venv       the test venv, target/venv, with pytest and pytest-xdist
#   make pyext      the ccext test extension for every interpreter, under target/pyext/<version>/
#   make lint       cargo fmt --check and cargo clippy --all-targets -D warnings
#   make debuginfod elfutils' debuginfod server and openssl for tests/debuginfod.rs (apt-get, as root)
#   make bugsink    Bugsink and sentry-relay in target/bugsink-venv for the crash tracker tests
#   make test       lint + venv + fixtures + cargo test (skips listed at the end)
#   make test-peers pystack's and py-spy's test expectations on every interpreter (tests/peers.rs)
#   make test-realworld real crashes of real packages pinned to broken versions, against gdb and
#                   faulthandler (tests/realworld.rs; installs the wheels under target/realworld)
#   make demo       crashcatch on a real crash, showing its report
#   make stress     the reliability suite; writes its results table into RELIABILITY.md
#   make wheel      the Python wheel (pyproject.toml, maturin): target/wheels/crashcatch-*.whl
#   make wheel-test build the wheel, install it in a fresh venv, run a crash through it
#   make wheels     release wheels for every platform: manylinux2014 and musllinux, x86_64 and aarch64
#   make wheels-test the x86_64 wheels' binaries on glibc 2.31 (bullseye's loader) and static (musl)
#   make test-aarch64 live tests in an emulated arm64 virtual machine, the aarch64 wheels too (slow; see README)
#   make test-docker the Docker example built and run in a real engine (docker.io, debootstrap; root)
#   make bench      benchmarks against the peers, written to BENCHMARKS.md (slow)
#   make bench-core crashcatch core against pystack core --native and gdb on the same cores
#   make clean

.DELETE_ON_ERROR:
SHELL := /bin/bash

CARGO ?= cargo

FIXDIR := target/fixtures
VENV := target/venv
DEMO_REPORTS := target/demo-reports

FIXTURE_VARIANTS := fp nofp stripped splitdebug
FIXTURE_PROGRAMS := null_deref abort_assert sigbus sigfpe recursion thread_crash \
	handled_recover handled_reraise sigill sigsys uffd_hang
BUILD_FIXTURE := scripts/build-fixture.sh
FIXTURE_HEADERS := $(wildcard fixtures/*.h)

# Extra arguments to build-fixture.sh for one program.
FIXTURE_ARGS_null_deref := --lib ccfix

FIXTURE_TARGETS := $(foreach v,$(FIXTURE_VARIANTS),\
	$(FIXDIR)/$(v)/libccfix.so $(addprefix $(FIXDIR)/$(v)/,$(FIXTURE_PROGRAMS)))

.PHONY: lint all build man completions fixtures venv pyext sid py311dbg debuginfod bugsink shells test demo stress bench bench-quick bench-core bench-pause bench-subprocesses clean wheel wheel-test \
	wheels wheels-test bullseye test-aarch64 test-docker test-peers test-realworld

all: build

build:
	$(CARGO) build --release

fixtures: $(FIXTURE_TARGETS)

# One set of rules per variant: the library, then every program (null_deref links the library).
define fixture_variant_rules
$(FIXDIR)/$(1)/libccfix.so: fixtures/ccfix.c $(FIXTURE_HEADERS) $(BUILD_FIXTURE)
	@$(BUILD_FIXTURE) $(1) $$@ $$<
	@echo "  CC  $$@"

$(FIXDIR)/$(1)/null_deref: $(FIXDIR)/$(1)/libccfix.so

$(FIXDIR)/$(1)/%: fixtures/%.c $(FIXTURE_HEADERS) $(BUILD_FIXTURE)
	@$(BUILD_FIXTURE) $(1) $$@ $$< $$(FIXTURE_ARGS_$$*)
	@echo "  CC  $$@"
endef
$(foreach v,$(FIXTURE_VARIANTS),$(eval $(call fixture_variant_rules,$(v))))

venv: $(VENV)/.stamp

# The C extension of the Python crash matrix (fixtures/pyext/ccext.c), for every pyenv
# interpreter and the system's python3.11, as tests/python_matrix.rs builds it itself:
# target/pyext/<version>/ (target/pyext/system-<version>/ for /usr/bin/python3.11).
PYENV_ROOT ?= $(HOME)/.pyenv
PYEXT_DIR := target/pyext
PYEXT_PYTHONS ?= $(wildcard $(PYENV_ROOT)/versions/*/bin/python) $(wildcard /usr/bin/python3.11)

pyext:
	@set -e; for py in $(PYEXT_PYTHONS); do \
		tag=$$($$py -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'); \
		case $$py in /usr/*) tag=system-$$tag;; esac; \
		echo "  CC  $$(fixtures/pyext/build.sh $$py $(PYEXT_DIR)/$$tag)"; \
	done

$(VENV)/.stamp: scripts/venv-requirements.txt scripts/make-venv.sh
	scripts/make-venv.sh $(VENV)

# CPython 3.13, 3.14 and 3.15 from Debian sid, unpacked under target/sid (each run through sid's
# own loader as target/sid/run-python3.X), and the debug files of their python3.X-dbg and of
# libc6-dbg under target/sid-dbg/usr/lib/debug (tests/python_sid.rs, the crash matrix, attach).
# The .deb files are kept in target/sid/.debs. A failed download only skips those tests, visibly.
SID_PYTHONS := 3.13 3.14 3.15

sid: $(foreach v,$(SID_PYTHONS),target/sid/run-python$(v)) target/sid-dbg/.stamp

target/sid/run-python%: scripts/sid-python.sh scripts/debian-unpack.sh
	@scripts/sid-python.sh target/sid $* || echo "make sid: could not unpack Debian sid's python$*; its tests will be skipped"

target/sid-dbg/.stamp: scripts/sid-dbg.sh scripts/debian-unpack.sh
	@scripts/sid-dbg.sh target/sid-dbg target/sid/.debs $(SID_PYTHONS) || echo "make sid: some sid debug packages could not be unpacked; the tests that need them will be skipped"

# Debian bookworm's python3.11 with its python3.11-dbg, of one version, under target/py311dbg
# (tests/python311_dbg.rs). A failed download only skips that test, visibly.
py311dbg: target/py311dbg/run-python3.11

target/py311dbg/run-python3.11: scripts/py311-dbg.sh scripts/debian-unpack.sh
	@scripts/py311-dbg.sh target/py311dbg || echo "make py311dbg: could not unpack python3.11-dbg; its test will be skipped"

# elfutils' debuginfod server (Debian's package) and openssl, for tests/debuginfod.rs. When they
# cannot be installed, those tests are skipped, visibly.
debuginfod:
	@scripts/install-debuginfod.sh || echo "make debuginfod: could not install debuginfod/openssl; tests/debuginfod.rs will skip"

# zsh and fish, so tests/cli_docs.rs checks the generated completions' syntax with the shells
# themselves (Debian's packages). When they cannot be installed, that check is skipped, visibly.
shells:
	@scripts/apt-need.sh shells zsh:zsh fish:fish || echo "make shells: could not install zsh/fish; the completion syntax checks will skip"

# Bugsink (a Sentry-protocol crash tracker) and sentry-relay (Sentry's event normalizer) from the
# Python registry, in target/bugsink-venv with a migrated template database, for
# tests/sentry_bugsink.rs and tests/sentry_relay.rs. When they cannot be installed, those tests
# are skipped, visibly.
BUGSINK_VENV := target/bugsink-venv

bugsink: $(BUGSINK_VENV)/.stamp

$(BUGSINK_VENV)/.stamp: scripts/bugsink-requirements.txt scripts/install-bugsink.sh
	@scripts/install-bugsink.sh $(BUGSINK_VENV) || echo "make bugsink: could not install Bugsink and sentry-relay; the crash tracker tests will be skipped"

# Tests find the fixtures in target/fixtures and the venv in target/venv (tests/common/mod.rs).
# The wheel test (tests/packaging.rs) is part of it: it builds the release binary through
# maturin, installs the wheel into a fresh venv and runs a crash with the installed crashcatch.
# Every skipped test or part leaves a line in target/test-skips.txt (tests/common::skip); the
# summary prints them, since cargo's capture hides a test's own output.
SKIP_LOG := target/test-skips.txt

test: lint venv fixtures sid py311dbg debuginfod bugsink shells
	@rm -f $(SKIP_LOG)
	@status=0; CRASHCATCH_WHEEL_TEST=1 $(CARGO) test --no-fail-fast || status=$$?; \
	scripts/test-summary.sh $(SKIP_LOG); exit $$status

# The peers' own test expectations (pystack's tests/integration, py-spy's integration tests),
# ported onto crashcatch's JSON, on every interpreter here; the last line is
# "peers: N passed, M failed, K skipped" (make test runs the same test, quietly).
test-peers: sid
	@set -o pipefail; $(CARGO) test --test peers -- --nocapture 2>&1 | grep -E '^(  FAIL|  SKIP|peers:|error)'

# Real crashes of real packages pinned to the versions that crash, compared with gdb's frame #0
# and faulthandler's call site of the same crash (tests/realworld.rs); the wheels come from PyPI
# into target/realworld once. The last line is "realworld: N passed, M failed, K skipped".
test-realworld:
	@set -o pipefail; $(CARGO) test --test realworld -- --ignored --nocapture 2>&1 | grep -E '^(PASS|FAIL|SKIP|realworld:|error)'

# Formatting and lints, as CI keeps them (make test runs this first).
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The demo crashes on purpose and crashcatch exits with the crash's own status (the shell's
# 139 for SIGSEGV). That status is shown, not returned: a demo that worked must not fail make.
# Generated from src/cli.rs by scripts/gen-docs (tests/cli_docs.rs checks them).
man:
	$(CARGO) run -q --example gen-docs -- man target/man

completions:
	$(CARGO) run -q --example gen-docs -- completions target/completions

demo: build
	@echo "== target/release/crashcatch --output-dir $(DEMO_REPORTS) -- python3 demo/crash.py"
	@target/release/crashcatch --output-dir $(DEMO_REPORTS) -- python3 demo/crash.py; \
	echo "== crashcatch exited with status $$? (the crash's own); reports in $(DEMO_REPORTS)/"

# The wheel puts the crashcatch binary on PATH where it is pip-installed (bindings = "bin").
wheel: venv
	$(VENV)/bin/maturin build --release --out target/wheels

# tests/packaging.rs alone (make test runs it too).
wheel-test: venv
	CRASHCATCH_WHEEL_TEST=1 $(CARGO) test --test packaging -- --nocapture


# Release wheels into target/wheels/ (scripts/build-wheels.sh): manylinux2014 (manylinux_2_17) and
# musllinux_1_2 (static binary), for x86_64 and aarch64, each checked with auditwheel. maturin
# links with zig (PyPI's ziglang), in target/wheel-tools. Minutes per wheel: not part of make test.
wheels:
	nice scripts/build-wheels.sh

# The manylinux binary run through Debian bullseye's glibc 2.31 loader, and the static musl
# binary, on real crashes, against the host build (tests/old_glibc.rs). Builds the two x86_64
# wheels first (cargo's cache makes a second run quick).
wheels-test: venv fixtures bullseye
	nice scripts/build-wheels.sh x86_64-unknown-linux-gnu x86_64-unknown-linux-musl
	CRASHCATCH_WHEELS_TEST=1 $(CARGO) test --test old_glibc -- --nocapture

# Debian bullseye's libc6 (glibc 2.31) and libgcc-s1, unpacked under target/bullseye.
bullseye: target/bullseye/.stamp

target/bullseye/.stamp: scripts/debian-unpack.sh
	scripts/debian-unpack.sh target/bullseye bullseye libc6 libgcc-s1
	touch $@

# Live tests in an emulated arm64 VM (scripts/aarch64-vm.sh): Debian bookworm's arm64 kernel,
# busybox and python3.11 unpacked once under target/aarch64-vm, crashcatch and the fixtures
# cross-built, an initramfs booted by qemu-system-aarch64. The two aarch64 wheels' binaries
# (manylinux2014, musllinux) run there too: they are built first (cargo's cache makes a second
# run quick). Not part of make test (see README).
test-aarch64: venv
	nice scripts/build-wheels.sh aarch64-unknown-linux-gnu aarch64-unknown-linux-musl
	scripts/aarch64-vm.sh

# examples/docker/Dockerfile in a real Docker engine (scripts/test-docker.sh): Debian's docker.io
# and debootstrap installed as root (scripts/install-docker.sh), a dockerd of its own when none
# runs, a Debian base image made by debootstrap (no registry image is pulled), the example built
# with the manylinux2014 wheel, then crashes, docker stop, orphans, pytest -n 2 and dump in
# containers. Ends with `docker: N passed, M failed`; one SKIP line where no engine can start.
# CRASHCATCH_DOCKER_SOURCE=1 also builds the default WHEEL=source image (network; minutes).
test-docker: venv
	scripts/test-docker.sh

# The reliability suite (RELIABILITY.md): C probes under the release build, the property tests
# and the report-file tests; rewrites the results table in RELIABILITY.md. A few minutes.
STRESS_PROGRAMS := sigprog sigflood churn faults
# Multiplies every repeat count (and the property-test cases); 2 takes about two minutes.
STRESS_SCALE ?= 2
STRESS_BINS := $(addprefix target/stress/bin/,$(STRESS_PROGRAMS))

target/stress/bin/%: stress/src/%.c
	@mkdir -p $(@D)
	$(CC) -O1 -g -Wall -Wextra -pthread -o $@ $<

stress: build fixtures $(STRESS_BINS)
	python3 stress/run.py --scale $(STRESS_SCALE)

# Benchmarks against the peers (gdb, strace, pystack, a minimal tracer), every figure a ratio
# measured side by side in one run; writes BENCHMARKS.md. About 15-20 minutes; BENCH_RUNS=3 for
# a quick look, BENCH_ONLY=suite,process,crash for some parts. Not a test: nothing here fails
# on a timing.
bench: build
	bench/setup.sh target/bench
	target/bench/venv/bin/python bench/run.py --out BENCHMARKS.md
	target/bench/venv/bin/python bench/pause.py --md BENCHMARKS.md
	CRASHCATCH=target/release/crashcatch python3 bench/subprocesses_pause.py

# How long crashcatch dump, py-spy and pystack stop the process they dump (bench/pause.py;
# make bench runs it too): the pause section of BENCHMARKS.md. A minute.
bench-pause: build
	bench/setup.sh target/bench
	target/bench/venv/bin/python bench/pause.py --md BENCHMARKS.md

# How long `dump --subprocesses` stops each process of a four-process tree, against `dump` of
# that process alone (bench/subprocesses_pause.py; make bench runs it too). Half a minute.
bench-subprocesses: build
	CRASHCATCH=target/release/crashcatch python3 bench/subprocesses_pause.py

# Post-mortem: crashcatch core, pystack core --native and gdb on the same kernel cores (a minute).
bench-core: build
	bench/setup.sh target/bench
	python3 bench/core.py 5

# One figure in seconds: peak RSS and symbolize time of one real crash (medians of 5).
bench-quick: build
	python3 scripts/bench-symbolize.py target/release/crashcatch

clean:
	$(CARGO) clean
