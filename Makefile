# crashcatch: build, test fixtures, test venv, tests.
#
#   make build      the crashcatch binary (release: target/release/crashcatch)
#   make fixtures   C test fixtures in every build variant, under target/fixtures/<variant>/
#   make venv       the test venv, target/venv, with pytest and pytest-xdist
#   make test       venv + fixtures + cargo test
#   make demo       crashcatch on a real crash, showing its report
#   make wheel      the Python wheel (pyproject.toml, maturin): target/wheels/crashcatch-*.whl
#   make wheel-test build the wheel, install it in a fresh venv, run a crash through it
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

.PHONY: all build fixtures venv test demo stress bench clean wheel wheel-test

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

# Tests find the fixtures in target/fixtures and the venv in target/venv (tests/common/mod.rs).
test: venv fixtures
	$(CARGO) test

# The demo crashes on purpose and crashcatch exits with the crash's own status (the shell's
# 139 for SIGSEGV). That status is shown, not returned: a demo that worked must not fail make.
demo: build $(FIXDIR)/fp/null_deref
	@echo "== target/release/crashcatch --output-dir $(DEMO_REPORTS) -- $(FIXDIR)/fp/null_deref"
	@target/release/crashcatch --output-dir $(DEMO_REPORTS) -- $(FIXDIR)/fp/null_deref; \
	echo "== crashcatch exited with status $$? (the crash's own); reports in $(DEMO_REPORTS)/"

# The wheel puts the crashcatch binary on PATH where it is pip-installed (bindings = "bin").
wheel: venv
	$(VENV)/bin/maturin build --release --out target/wheels

# tests/packaging.rs builds the wheel itself; it is opt-in (CRASHCATCH_WHEEL_TEST=1) because a
# release build takes a minute or more, too long for every `make test`.
wheel-test: venv
	CRASHCATCH_WHEEL_TEST=1 $(CARGO) test --test packaging -- --nocapture

stress:
	@echo "stress: not yet"

bench:
	@echo "bench: not yet"

clean:
	$(CARGO) clean
