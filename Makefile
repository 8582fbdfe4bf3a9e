# libvigil - build, test, install.  See README.md.
#
#   make                 release build: build/lib/libvigil.{a,so}
#   make run             the whole loop on this machine (scripts/run.sh; Ctrl-C stops)
#   make ui              the dashboard: npm ci (when ui/package-lock.json changed) and
#                        npm run build in ui/, into ui/dist (the hub serves it at /)
#   make test            install missing dependencies, build with ASan+UBSan in
#                        build/asan, run every unit and integration test
#   make lint            clang-format check and cppcheck
#   make check-deps      each dependency's headers included by one folder of lib/ only
#   make bench           build optimised benchmarks and print their figures
#   make valgrind        unit tests of a plain build under valgrind
#   make fuzz FUZZ_SECONDS=30   build the libFuzzer targets of fuzz/ with clang in
#                        build/fuzz and run each for that many seconds
#   make install PREFIX=/usr/local DESTDIR=...   |   make uninstall   |   make clean

VERSION      := 0.3.0
SOMAJOR      := 0
PREFIX       ?= /usr/local
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
BINDIR       ?= $(PREFIX)/bin
DESTDIR      ?=
BUILD        ?= build
SANITIZE     ?= 0

CC           ?= cc
AR           ?= ar
PKG_CONFIG   ?= pkg-config

# Libraries found through pkg-config, and those that ship no .pc file. Only
# what lib/ uses: each one's headers are included by one folder (check-deps).
PC_DEPS      := libcurl libcjson yaml-0.1 sqlite3 libmicrohttpd zlib libgit2 libpq hiredis
RAW_DEPS     := -lmbedx509 -lmbedcrypto -lpthread -lm

# Evaluated once, on first use, after `deps` has run.
DEP_CFLAGS    = $(eval DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PC_DEPS)))$(DEP_CFLAGS)
DEP_LIBS      = $(eval DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(PC_DEPS)) $(RAW_DEPS))$(DEP_LIBS)
CHECK_CFLAGS  = $(eval CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check))$(CHECK_CFLAGS)
CHECK_LIBS    = $(eval CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check))$(CHECK_LIBS)

WARN         := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
BASE_CFLAGS  := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -Iinclude -Ilib
ifeq ($(SANITIZE),1)
OPT          := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_LDFLAGS  := -fsanitize=address,undefined
else
OPT          ?= -O2 -g
SAN_LDFLAGS  :=
endif
CFLAGS       ?=
LDFLAGS      ?=
V            ?= 0
ifeq ($(V),0)
Q            := @
SAY           = @printf '  %-6s %s\n'
else
Q            :=
SAY           = @true
endif
ALL_CFLAGS    = $(BASE_CFLAGS) $(OPT) $(DEP_CFLAGS) $(CFLAGS)

LIB_SRC      := $(sort $(wildcard lib/*/*.c))
LIB_OBJ      := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
STATIC_LIB   := $(BUILD)/lib/libvigil.a
SHARED_REAL  := $(BUILD)/lib/libvigil.so.$(VERSION)
SHARED_SO    := $(BUILD)/lib/libvigil.so.$(SOMAJOR)
SHARED_LINK  := $(BUILD)/lib/libvigil.so
DEPS_STAMP   := $(BUILD)/.deps-ok

ASAN_BUILD   ?= build/asan
# UNIT=test_metric (or several, space-separated) runs only those suites.
UNIT         ?=
# Integration suites (tests/integration/test_*.c: daemons as real processes)
# run after the unit suites and are named by UNIT the same way.
UNIT_SRC     := $(if $(UNIT),$(wildcard $(UNIT:%=tests/unit/%.c) $(UNIT:%=tests/integration/%.c)),\
                  $(sort $(wildcard tests/unit/test_*.c)) $(sort $(wildcard tests/integration/test_*.c)))
UNIT_BIN     := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%))
TESTUTIL_OBJ := $(BUILD)/obj/tests/unit/testutil.o
HELPER_SRC   := $(sort $(wildcard tests/helpers/*.c))
HELPER_BIN   := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
BENCH_SRC    := $(sort $(wildcard bench/*.c))
BENCH_BIN    := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: FORCE all lib bins deps run ui test unit-test header-test check-abi abi-list check-deps lint bench valgrind fuzz fuzz-bins install uninstall clean \
        bindings-lib bindings-test python-test go-test
.DEFAULT_GOAL := all
.SECONDARY:

DAEMONS      := $(notdir $(wildcard daemons/*))
DAEMON_BIN   := $(DAEMONS:%=$(BUILD)/bin/vigil-%)
TOOL_BIN     := $(if $(wildcard tools/vigil/*.c),$(BUILD)/bin/vigil)

all: lib bins

bins: $(DAEMON_BIN) $(TOOL_BIN)

# Daemons and tools use only the public API. They link the static library with
# --as-needed, so a daemon loads only the shared libraries it really uses.
.SECONDEXPANSION:
$(BUILD)/bin/vigil-%: $$(wildcard daemons/%/*.c) $(STATIC_LIB) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) $(filter-out -Ilib,$(ALL_CFLAGS)) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) \
	    -Wl,--as-needed $(STATIC_LIB) $(DEP_LIBS)

$(BUILD)/bin/vigil: $(wildcard tools/vigil/*.c) $(STATIC_LIB) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) $(filter-out -Ilib,$(ALL_CFLAGS)) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) \
	    -Wl,--as-needed $(STATIC_LIB) $(DEP_LIBS)

lib: $(STATIC_LIB) $(SHARED_REAL) $(SHARED_SO) $(SHARED_LINK)

deps: $(DEPS_STAMP)

$(DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(SAY) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The dashboard's installed directory (`make install` copies ui/dist there) is
# the hub's default ui.dir, compiled into lib/hub/ui.c; the object is rebuilt
# when PREFIX changes.
UI_DIR       ?= $(PREFIX)/share/vigil/ui
ifeq ($(filter /%,$(UI_DIR)),)
$(error UI_DIR must be an absolute path, not "$(UI_DIR)")
endif
$(BUILD)/obj/lib/hub/ui.o: ALL_CFLAGS += -DVIGIL__UI_DIR='"$(UI_DIR)"'
$(BUILD)/obj/lib/hub/ui.o: $(BUILD)/.ui-dir
$(BUILD)/.ui-dir: FORCE
	@mkdir -p $(@D)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(UI_DIR)" ]; then echo "$(UI_DIR)" > $@; fi
FORCE:

$(STATIC_LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	@rm -f $@
	$(SAY) AR $@
	$(Q)$(AR) rcs $@ $^

$(SHARED_REAL): $(LIB_OBJ) lib/vigil.map
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) -shared -Wl,-soname,libvigil.so.$(SOMAJOR) -Wl,--version-script=lib/vigil.map \
	    -Wl,--no-undefined $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(DEP_LIBS)

$(SHARED_SO) $(SHARED_LINK): $(SHARED_REAL)
	$(Q)ln -sf libvigil.so.$(VERSION) $@

# The whole loop from the shipped configs (scripts/run.sh): remediator, hub
# and agent; the loop starts vigil-demo-service and restarts it when killed.
# `set -m` runs the script as a job of its own that owns the terminal: Ctrl-C
# reaches it (and it exits 0 after stopping everything), not make.
run: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory ui || echo "run: warning: the dashboard could not be built" \
	    "(see above); the daemons run, and http://127.0.0.1:7600/ says how to build it" >&2
	@BUILD=$(BUILD) bash -c 'set -m; bash scripts/run.sh; exit $$?'

# The dashboard (ui/: ES modules and uPlot, pinned by ui/package-lock.json):
# `npm ci` when the lockfile is newer than the stamp it leaves in
# ui/node_modules, then `npm run build`, which writes ui/dist. The hub of
# `make run` serves ui/dist (configs/collector.yaml `ui: {dir}`); `make
# install` installs it.
UI_NPM_STAMP := ui/node_modules/.vigil-npm-ci
ui:
	@if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then \
	    echo "ui: node and npm are needed to build the dashboard and are not installed:" >&2; \
	    echo "ui:   sh scripts/deps.sh   (Debian: apt-get install nodejs npm), or Node.js 18+" \
	         "with npm from https://nodejs.org/" >&2; \
	    echo "ui: without it the hub still runs, and its / page says the dashboard is not built" >&2; \
	    exit 1; fi
	@if [ ! -f ui/package.json ] || [ ! -f ui/package-lock.json ]; then \
	    echo "ui: ui/package.json or ui/package-lock.json is missing: no dashboard to build" >&2; \
	    exit 1; fi
	@if [ ! -f $(UI_NPM_STAMP) ] || [ ui/package-lock.json -nt $(UI_NPM_STAMP) ]; then \
	    echo "ui: npm ci (the versions pinned by ui/package-lock.json)"; \
	    cd ui && npm ci --no-audit --no-fund && mkdir -p node_modules && \
	        touch $(UI_NPM_STAMP:ui/%=%); fi
	@cd ui && npm run --silent build
	@if [ ! -f ui/dist/index.html ]; then \
	    echo "ui: npm run build did not write ui/dist/index.html" >&2; exit 1; fi
	@echo "ui: built ui/dist (make run serves it at http://127.0.0.1:7600/; make install installs it)"

# ---- tests -------------------------------------------------------------------

$(BUILD)/obj/tests/%.o: tests/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(SAY) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -MMD -MP -c $< -o $@

# Static pattern rules: each suite links the object of its own folder, never a
# stale object left by a suite that moved between tests/unit and tests/integration.
UNIT_SUITES  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_SUITES := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test_*.c))

$(UNIT_SUITES): $(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTUTIL_OBJ) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $< $(TESTUTIL_OBJ) $(STATIC_LIB) $(CHECK_LIBS) $(DEP_LIBS)

$(INTEG_SUITES): $(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TESTUTIL_OBJ) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $< $(TESTUTIL_OBJ) $(STATIC_LIB) $(CHECK_LIBS) $(DEP_LIBS)

# Small stand-alone programs the suites run as real child processes (found
# through $$VIGIL_TEST_HELPERS). Plain C, no libvigil.
$(BUILD)/tests/helpers/%: tests/helpers/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -o $@ $<

test: deps
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE=1 unit-test
	@$(MAKE) --no-print-directory header-test check-abi
	@$(MAKE) --no-print-directory bindings-test
	@$(if $(UNIT),true,$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE=1 browser-test)

# The dashboard in Debian's chromium through playwright-core (tests/browser/run.mjs,
# docs/dashboard.md), against the daemons of $(BUILD)/bin; skipped, saying so, when node
# or chromium is not installed. Screenshots in $(BUILD)/test-output/browser.
.PHONY: browser-test
CHROMIUM     ?= /usr/bin/chromium
browser-test: bins
	@if ! command -v node >/dev/null 2>&1; then echo "browser-test: SKIPPED: node is not installed"; \
	elif [ ! -x "$(CHROMIUM)" ]; then echo "browser-test: SKIPPED: $(CHROMIUM) is not installed"; \
	else $(MAKE) --no-print-directory ui && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 CHROMIUM=$(CHROMIUM) \
	    VIGIL_TEST_BUILD=$(CURDIR)/$(BUILD) VIGIL_BROWSER_OUT=$(CURDIR)/$(BUILD)/test-output/browser node tests/browser/run.mjs; fi

# Runs every unit suite; a failing suite fails the target after all have run.
unit-test: $(UNIT_BIN) $(HELPER_BIN) bins
	@failed=0; for t in $(UNIT_BIN); do \
	    echo "== $$t"; \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	        VIGIL_TEST_SRCDIR=$(CURDIR) VIGIL_TEST_BUILD=$(CURDIR)/$(BUILD) \
	        VIGIL_TEST_HELPERS=$(CURDIR)/$(BUILD)/tests/helpers $$t || failed=1; \
	done; exit $$failed

# Every public header (sys/ included) compiles alone, strict C99 and C++11,
# and vigil.h alone with a call, as a program would use it.
PUBLIC_HEADERS := $(sort $(wildcard include/vigil/*.h include/vigil/sys/*.h))
HDR_CFLAGS     := -pedantic -Wall -Wextra -Werror -Iinclude
header-test: | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/hdr
	@command -v c++ >/dev/null 2>&1 || { echo "header-test: c++ not found"; exit 1; }
	@n=0; for h in $(PUBLIC_HEADERS); do \
	    b=$$(echo "$${h#include/}" | tr '/.' '__'); \
	    printf '#include <%s>\n' "$${h#include/}" > $(BUILD)/hdr/$$b.c; \
	    cp $(BUILD)/hdr/$$b.c $(BUILD)/hdr/$$b.cc; \
	    $(CC) -std=c99 $(HDR_CFLAGS) -c $(BUILD)/hdr/$$b.c -o $(BUILD)/hdr/$$b.o && \
	    c++ -std=c++11 $(HDR_CFLAGS) -c $(BUILD)/hdr/$$b.cc -o $(BUILD)/hdr/$$b.cc.o || \
	        { echo "header-test: $$h does not compile alone"; exit 1; }; \
	    n=$$((n + 1)); \
	done; \
	printf '#include <vigil/vigil.h>\nint main(void){return vigil_version(0,0,0)==0;}\n' > $(BUILD)/hdr/h.c; \
	cp $(BUILD)/hdr/h.c $(BUILD)/hdr/h.cc; \
	$(CC) -std=c99 $(HDR_CFLAGS) -c $(BUILD)/hdr/h.c -o $(BUILD)/hdr/h.o && \
	c++ -std=c++11 $(HDR_CFLAGS) -c $(BUILD)/hdr/h.cc -o $(BUILD)/hdr/hpp.o || exit 1; \
	{ cat tests/header/init_head.h; \
	  for h in $(PUBLIC_HEADERS); do printf '#include <%s>\n' "$${h#include/}"; done; \
	  printf 'int main(void)\n{\n'; \
	  for m in $$(sed -n 's/^#define \(VIGIL_[A-Z0-9_]*\)_INIT\( .*\)*$$/\1/p' $(PUBLIC_HEADERS)); do \
	      t=$$(echo "$$m" | tr 'A-Z' 'a-z'); \
	      if grep -q "^#define $${m}_VERSION " $(PUBLIC_HEADERS); then \
	          printf '    VT_INIT_VERSIONED(%s, %s_INIT, %s_VERSION)\n' "$$t" "$$m" "$$m"; \
	      else printf '    VT_INIT(%s, %s_INIT)\n' "$$t" "$$m"; fi; \
	  done; printf '    return 0;\n}\n'; } > $(BUILD)/hdr/init.c; \
	cp $(BUILD)/hdr/init.c $(BUILD)/hdr/init.cc; \
	ni=$$(grep -c '^    VT_INIT' $(BUILD)/hdr/init.c); \
	$(CC) -std=c99 $(HDR_CFLAGS) -Itests/header -c $(BUILD)/hdr/init.c -o $(BUILD)/hdr/init.o && \
	c++ -std=c++11 $(HDR_CFLAGS) -Itests/header -c $(BUILD)/hdr/init.cc -o $(BUILD)/hdr/init.cc.o || \
	    { echo "header-test: an *_INIT macro is out of step with its struct ($(BUILD)/hdr/init.c)"; exit 1; }; \
	echo "header-test: $$n of $(words $(PUBLIC_HEADERS)) public headers compile alone as C99 and C++11 (-pedantic -Wall -Wextra -Werror), vigil.h with a call too; $$ni *_INIT macros instantiated"

# The exported symbols, one per line, as the committed list lib/vigil.sym holds
# them (version tags stripped, sorted).
EXPORTED_SYMS = nm -D --defined-only $(SHARED_REAL) | awk '$$2 ~ /^[TDRBVWiu]$$/ {print $$3}' | sed 's/@.*//' | LC_ALL=C sort -u

# Regenerates lib/vigil.sym from the built library: run it when the API changes
# on purpose and commit the diff, so every ABI change shows in review.
abi-list: $(SHARED_REAL)
	@$(EXPORTED_SYMS) > lib/vigil.sym
	@echo "abi-list: $$(wc -l < lib/vigil.sym) symbols written to lib/vigil.sym"

# Only vigil_* symbols may be exported, and exactly those of lib/vigil.sym.
check-abi: $(SHARED_REAL)
	@bad=$$($(EXPORTED_SYMS) | grep -v '^vigil_[a-z0-9]' || true); \
	if [ -n "$$bad" ]; then echo "check-abi: unexpected exported symbols:"; echo "$$bad"; exit 1; fi; \
	if ! $(EXPORTED_SYMS) | diff -u lib/vigil.sym - > $(BUILD)/abi.diff; then \
	    echo "check-abi: the exported symbols differ from lib/vigil.sym ('+' exported but not listed," \
	         "'-' listed but not exported); if the change is intended, run 'make abi-list' and commit it:"; \
	    cat $(BUILD)/abi.diff; exit 1; fi; \
	echo "check-abi: $$(wc -l < lib/vigil.sym) vigil_* symbols exported, exactly those of lib/vigil.sym"

valgrind: deps
	@$(MAKE) --no-print-directory BUILD=build/plain OPT="-O0 -g" $(UNIT_BIN:$(BUILD)/%=build/plain/%) \
	    $(HELPER_BIN:$(BUILD)/%=build/plain/%) bins
	@failed=0; for t in $(UNIT_BIN:$(BUILD)/%=build/plain/%); do \
	    echo "== valgrind $$t"; \
	    CK_FORK=no VIGIL_TEST_SRCDIR=$(CURDIR) VIGIL_TEST_BUILD=$(CURDIR)/build/plain \
	        VIGIL_TEST_HELPERS=$(CURDIR)/build/plain/tests/helpers VIGIL_TEST_VALGRIND=1 valgrind -q --leak-check=full \
	        --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
	        --error-exitcode=99 $$t || failed=1; \
	done; exit $$failed

# ---- bindings ----------------------------------------------------------------

# The Python (ctypes) and Go (cgo) bindings load a plain shared library: ctypes
# cannot load the ASan build without preloading libasan, and Go's -race cannot
# link it. bindings-lib builds one in build/shared with an uninstalled
# pkg-config file (build/shared/pkgconfig/vigil.pc) naming the tree's headers.
BINDINGS_BUILD := build/shared
BINDINGS_TESTS := $(if $(wildcard bindings/python/pyproject.toml),python-test) \
                  $(if $(wildcard bindings/go/go.mod),go-test)

bindings-lib: deps
	@$(MAKE) --no-print-directory BUILD=$(BINDINGS_BUILD) SANITIZE=0 lib $(BINDINGS_BUILD)/pkgconfig/vigil.pc

$(BINDINGS_BUILD)/pkgconfig/vigil.pc: pkgconfig/vigil.pc.in Makefile
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(CURDIR)|g' -e 's|@LIBDIR@|$(CURDIR)/$(BINDINGS_BUILD)/lib|g' \
	    -e 's|@INCLUDEDIR@|$(CURDIR)/include|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@REQUIRES_PRIVATE@|$(PC_DEPS)|g' -e 's|@LIBS_PRIVATE@|$(RAW_DEPS)|g' $< > $@

python-test: bindings-lib
	VIGIL_LIBRARY=$(CURDIR)/$(BINDINGS_BUILD)/lib/libvigil.so.0 PYTHONDONTWRITEBYTECODE=1 \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider bindings/python/tests

# The Go binding (bindings/go): go test -race against the plain library,
# through the uninstalled vigil.pc; the Go caches stay under build/ and the
# module proxy is off (the binding has no dependencies).
# Go's build cache does not see headers outside the module: their digest in CGO_CFLAGS
# (part of the cache key) makes a change of include/vigil/ rebuild the cgo code.
GO_HEADERS_SUM = $(shell cat $(PUBLIC_HEADERS) | sha256sum | cut -c1-16)
GO_ENV := PKG_CONFIG_PATH=$(CURDIR)/$(BINDINGS_BUILD)/pkgconfig \
          LD_LIBRARY_PATH=$(CURDIR)/$(BINDINGS_BUILD)/lib \
          GOCACHE=$(CURDIR)/build/go/cache GOPATH=$(CURDIR)/build/go/path \
          GO111MODULE=on GOPROXY=off GOFLAGS= \
          CGO_CFLAGS="-O2 -g -DVIGIL_HEADERS_SUM=$(GO_HEADERS_SUM)"
GO ?= go

go-test: bindings-lib
	cd bindings/go && env -u GOTOOLCHAIN $(GO_ENV) $(GO) vet ./... && \
	    env -u GOTOOLCHAIN $(GO_ENV) $(GO) test -race -count=1 ./...

bindings-test: $(BINDINGS_TESTS)
	@echo "bindings-test: $(if $(strip $(BINDINGS_TESTS)),$(strip $(BINDINGS_TESTS)) passed,no bindings yet)"

# ---- fuzzing -----------------------------------------------------------------

# libFuzzer needs clang and its runtime (gcc's sanitizer objects do not link
# with it): the library objects are built again with clang into build/fuzz,
# instrumented for coverage, each fuzz/<name>.c links them into a fuzzer, and
# scripts/fuzz.sh runs every one for FUZZ_SECONDS over fuzz/corpus/<name>/,
# writing new inputs to build/fuzz/corpus/<name>/ only.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 30
FUZZ_BUILD   := build/fuzz
FUZZ_SRC     := $(sort $(wildcard fuzz/*.c))
FUZZ_BIN     := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/fuzzers/%)
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT="$(FUZZ_OPT)" fuzz-bins
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_SRC:fuzz/%.c=%)

fuzz-bins: $(FUZZ_BIN)

$(BUILD)/fuzzers/%: fuzz/%.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(STATIC_LIB) $(DEP_LIBS)

# ---- benchmarks --------------------------------------------------------------

$(BUILD)/bench/%: bench/%.c $(STATIC_LIB)
	@mkdir -p $(@D)
	$(SAY) LD $@
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(STATIC_LIB) $(DEP_LIBS)

BENCH_SH     := $(sort $(wildcard bench/*.sh))

bench: deps lib bins $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done
	@for b in $(BENCH_SH); do echo "== $$b"; VIGIL_BUILD=$(BUILD) bash $$b || exit 1; done
	@if [ -f bindings/python/bench_policy.py ]; then $(MAKE) --no-print-directory bindings-lib && \
	    echo "== bindings/python/bench_policy.py" && \
	    VIGIL_LIBRARY=$(CURDIR)/$(BINDINGS_BUILD)/lib/libvigil.so.0 PYTHONDONTWRITEBYTECODE=1 \
	    /usr/bin/python3 bindings/python/bench_policy.py; fi
	@if [ -f bindings/go/go.mod ]; then $(MAKE) --no-print-directory bindings-lib && \
	    echo "== bindings/go/cmd/policybench" && \
	    cd bindings/go && env -u GOTOOLCHAIN $(GO_ENV) $(GO) run ./cmd/policybench; fi

# ---- lint --------------------------------------------------------------------

FORMAT_FILES  = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find lib include tests bench examples -name '*.[ch]')

lint: deps
	clang-format --dry-run -Werror $(FORMAT_FILES)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	    --std=c11 -D_GNU_SOURCE -Iinclude -Ilib --inline-suppr \
	    --suppress=missingIncludeSystem lib

# ---- dependency owners -------------------------------------------------------

# Each dependency's headers are included by one folder of lib/ only, and by no
# public header; cJSON, the library's JSON tree, is the exception. A line of
# DEP_OWNERS is "<header pattern for grep -E>=<the folder that owns it>".
DEP_OWNERS   := 'curl/=lib/http/' '(mbedtls|psa)/=lib/crypto/' 'zlib\.h=lib/gzip/' \
                'sqlite3\.h=lib/store/' 'yaml\.h=lib/config/' 'microhttpd\.h=lib/httpd/' \
                'git2(\.h|/)=lib/gitsync/' '(libpq-fe|libpq-events|pg_config[a-z_]*)\.h=lib/store/pg' \
                'hiredis(\.h|/)=lib/redis/'

check-deps:
	@bad=0; for rule in $(DEP_OWNERS); do \
	    hdr=$${rule%%=*}; owner=$${rule#*=}; \
	    hits=$$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($$hdr)" lib include \
	            --include='*.c' --include='*.h' | grep -v "^$$owner" || true); \
	    if [ -n "$$hits" ]; then \
	        echo "$$hits" | sed "s|^\([^:]*\):\([0-9]*\):.*[<\"]\([^>\"]*\)[>\"].*|check-deps: \1:\2 includes \3, which only $$owner may include|"; \
	        bad=1; fi; \
	done; \
	if [ $$bad -ne 0 ]; then exit 1; fi; \
	echo "check-deps: every dependency header is included from its one folder"

# ---- install -----------------------------------------------------------------

$(BUILD)/vigil.pc: pkgconfig/vigil.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@REQUIRES_PRIVATE@|$(PC_DEPS)|g' \
	    -e 's|@LIBS_PRIVATE@|$(RAW_DEPS)|g' $< > $@

install: lib $(BUILD)/vigil.pc $(TOOL_BIN)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/vigil/sys
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf libvigil.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvigil.so.$(SOMAJOR)
	ln -sf libvigil.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvigil.so
	install -m 644 include/vigil/*.h $(DESTDIR)$(INCLUDEDIR)/vigil/
	@if ls include/vigil/sys/*.h >/dev/null 2>&1; then \
	    install -m 644 include/vigil/sys/*.h $(DESTDIR)$(INCLUDEDIR)/vigil/sys/; fi
	install -m 644 $(BUILD)/vigil.pc $(DESTDIR)$(LIBDIR)/pkgconfig/vigil.pc
	@if [ -n "$(TOOL_BIN)" ]; then install -d $(DESTDIR)$(BINDIR) && \
	    install -m 755 $(TOOL_BIN) $(DESTDIR)$(BINDIR)/vigil; fi
	@if [ -f ui/dist/index.html ]; then \
	    echo "install: the dashboard, ui/dist -> $(DESTDIR)$(UI_DIR)"; \
	    rm -rf $(DESTDIR)$(UI_DIR) && install -d $(DESTDIR)$(UI_DIR) && \
	    cp -R ui/dist/. $(DESTDIR)$(UI_DIR)/ && chmod -R u=rwX,go=rX $(DESTDIR)$(UI_DIR); \
	else echo "install: ui/dist is not built (make ui): the dashboard is not installed;" \
	    "the hub says so at /"; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libvigil.a $(DESTDIR)$(LIBDIR)/libvigil.so \
	    $(DESTDIR)$(LIBDIR)/libvigil.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libvigil.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/vigil.pc $(DESTDIR)$(BINDIR)/vigil
	rm -rf $(DESTDIR)$(INCLUDEDIR)/vigil $(DESTDIR)$(UI_DIR)
	@rmdir $(DESTDIR)$(PREFIX)/share/vigil 2>/dev/null || true

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
