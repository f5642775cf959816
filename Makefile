# crashcatch: build, test fixtures, test venv, tests.
#
#   make build      the crashcatch binary (release: target/release/crashcatch)
#   make fixtures   C test fixtures in every build variant, under target/fixtures/<variant>/
#   make venv       the test venv, target/venv, with pytest and pytest-xdist
#   make test       venv + fixtures + cargo test
#   make demo       crashcatch on a real crash, showing its report
#   make bench      benchmarks against the peers, written to BENCHMARKS.md (slow)
#   make clean

.DELETE_ON_ERROR:
SHELL := /bin/bash

CARGO ?= cargo

FIXDIR := target/fixtures
VENV := target/venv
DEMO_REPORTS := target/demo-reports

FIXTURE_VARIANTS := fp nofp stripped splitdebug
FIXTURE_PROGRAMS := null_deref abort_assert sigbus sigfpe recursion thread_crash \
	handled_recover handled_reraise
BUILD_FIXTURE := scripts/build-fixture.sh
FIXTURE_HEADERS := $(wildcard fixtures/*.h)

# Extra arguments to build-fixture.sh for one program.
FIXTURE_ARGS_null_deref := --lib ccfix

FIXTURE_TARGETS := $(foreach v,$(FIXTURE_VARIANTS),\
	$(FIXDIR)/$(v)/libccfix.so $(addprefix $(FIXDIR)/$(v)/,$(FIXTURE_PROGRAMS)))

.PHONY: all build fixtures venv sid py311dbg test demo stress bench clean

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

$(VENV)/.stamp: scripts/venv-requirements.txt scripts/make-venv.sh
	scripts/make-venv.sh $(VENV)

# CPython 3.14 from Debian sid, unpacked under target/sid (tests/python314.rs). A failed
# download only skips that test, visibly.
sid: target/sid/run-python3.14

target/sid/run-python3.14: scripts/sid-python.sh scripts/debian-unpack.sh
	@scripts/sid-python.sh target/sid || echo "make sid: could not unpack Debian sid's python3.14; its test will be skipped"

# Debian bookworm's python3.11 with its python3.11-dbg, of one version, under target/py311dbg
# (tests/python311_dbg.rs). A failed download only skips that test, visibly.
py311dbg: target/py311dbg/run-python3.11

target/py311dbg/run-python3.11: scripts/py311-dbg.sh scripts/debian-unpack.sh
	@scripts/py311-dbg.sh target/py311dbg || echo "make py311dbg: could not unpack python3.11-dbg; its test will be skipped"

# Tests find the fixtures in target/fixtures and the venv in target/venv (tests/common/mod.rs).
test: venv fixtures sid py311dbg
	$(CARGO) test

# The demo crashes on purpose and crashcatch exits with the crash's own status (the shell's
# 139 for SIGSEGV). That status is shown, not returned: a demo that worked must not fail make.
demo: build $(FIXDIR)/fp/null_deref
	@echo "== target/release/crashcatch --output-dir $(DEMO_REPORTS) -- $(FIXDIR)/fp/null_deref"
	@target/release/crashcatch --output-dir $(DEMO_REPORTS) -- $(FIXDIR)/fp/null_deref; \
	echo "== crashcatch exited with status $$? (the crash's own); reports in $(DEMO_REPORTS)/"

stress:
	@echo "stress: not yet"

# Benchmarks against the peers (gdb, strace, pystack, a minimal tracer), every figure a ratio
# measured side by side in one run; writes BENCHMARKS.md. About 15-20 minutes; BENCH_RUNS=3 for
# a quick look, BENCH_ONLY=suite,process,crash for some parts. Not a test: nothing here fails
# on a timing.
bench: build
	bench/setup.sh target/bench
	target/bench/venv/bin/python bench/run.py --out BENCHMARKS.md

clean:
	$(CARGO) clean
