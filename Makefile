# cunicorn — one GNU Makefile. Every Python flag derives from $(PYTHON).
#   make            build build/cunicorn
#   make run        build and serve examples/hello.py on http://127.0.0.1:8000
#   make test       install what is missing, build, run every test (normal + ASan/UBSan)
#   make BUILD=asan sanitizer flavour in build/asan/
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS (clang)

PYTHON ?= python3
BUILD ?= release
CC ?= cc

# The python3-config that belongs to $(PYTHON), not whichever is first on PATH.
PYCONFIG := $(shell $(PYTHON) -c 'import sys,os,sysconfig; d=os.path.dirname(os.path.realpath(sys.executable)); v=sysconfig.get_config_var("VERSION"); c=[os.path.join(d,"python"+v+"-config"), os.path.join(d,"python3-config")]; print(next((x for x in c if os.path.exists(x)), ""))' 2>/dev/null)
PY_INCLUDES := $(if $(PYCONFIG),$(shell $(PYCONFIG) --includes))
PY_LDFLAGS := $(if $(PYCONFIG),$(shell $(PYCONFIG) --embed --ldflags))
# --ldflags gives -L but no rpath for a non-system libpython (pyenv): add one.
PY_LIBDIR := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")' 2>/dev/null)
comma := ,
PY_LDFLAGS += $(if $(PY_LIBDIR),-Wl$(comma)-rpath$(comma)$(PY_LIBDIR))

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Isrc -pthread -fno-strict-aliasing

ifeq ($(BUILD),asan)
OUT := build/asan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
else ifeq ($(BUILD),debug)
OUT := build/debug
OPT := -O0 -g
LDSAN :=
else
OUT := build
OPT := -O2 -g -gdwarf-4  # DWARF 4: valgrind 3.19 (Debian 12) cannot read gcc 12's DWARF 5
LDSAN :=
endif

# OpenSSL (libssl-dev) for TLS listeners, found with pkg-config.
SSL_CFLAGS := $(shell pkg-config --cflags openssl 2>/dev/null)
SSL_LIBS := $(or $(shell pkg-config --libs openssl 2>/dev/null),-lssl -lcrypto)

CFLAGS ?=
CFLAGS += $(BASE_CFLAGS) $(OPT) $(SSL_CFLAGS)
NGHTTP2_CFLAGS := $(shell pkg-config --cflags libnghttp2 2>/dev/null)
NGHTTP2_LIBS := $(shell pkg-config --libs libnghttp2 2>/dev/null || echo -lnghttp2)
LDLIBS := $(SSL_LIBS) -lpthread -lm $(NGHTTP2_LIBS)

# Everything below py/ builds without Python: unit tests and fuzzers link libcu.a only.
CORE_SRC := $(wildcard src/core/*.c src/event/*.c src/net/*.c src/http/*.c src/config/*.c src/log/*.c)
PY_SRC := $(wildcard src/py/*.c)
APP_SRC := $(wildcard src/proc/*.c src/workers/*.c src/ctl/*.c) src/main.c

CORE_OBJ := $(CORE_SRC:%.c=$(OUT)/obj/%.o)
PY_OBJ := $(PY_SRC:%.c=$(OUT)/obj/%.o)
APP_OBJ := $(APP_SRC:%.c=$(OUT)/obj/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)

.PHONY: all run test unit integration conformance deps test-deps clean format format-check bench fuzz asan

all: $(OUT)/cunicorn $(OUT)/cunicornc

# The control-socket client: libc only.
$(OUT)/cunicornc: tools/cunicornc.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDSAN) -o $@ $<

$(OUT)/libcu.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(OUT)/cunicorn: $(APP_OBJ) $(PY_OBJ) $(OUT)/libcu.a
	@test -n "$(PYCONFIG)" || { echo "error: no python3-config for $(PYTHON); install python3-dev (Debian) or choose PYTHON=..." >&2; exit 1; }
	$(CC) $(LDSAN) -o $@ $(APP_OBJ) $(PY_OBJ) $(OUT)/libcu.a $(PY_LDFLAGS) $(LDLIBS)

$(OUT)/obj/src/py/%.o: src/py/%.c
	@mkdir -p $(@D)
	@test -n "$(PYCONFIG)" || { echo "error: no python3-config for $(PYTHON); install python3-dev (Debian) or choose PYTHON=..." >&2; exit 1; }
	$(CC) $(CFLAGS) $(PY_INCLUDES) -MMD -MP -c -o $@ $<

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(OUT)/tests/%: tests/unit/%.c $(OUT)/libcu.a tests/unit/t.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDSAN) -Itests/unit -o $@ $< $(OUT)/libcu.a $(LDLIBS)

# The engine's unit test links the engine itself (workers/ without Python).
ENGINE_TEST_SRC := src/workers/engine.c src/workers/settings.c src/workers/blocking.c src/workers/h2.c
$(OUT)/tests/test_engine: tests/unit/test_engine.c $(ENGINE_TEST_SRC) $(OUT)/libcu.a tests/unit/t.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDSAN) -Itests/unit -o $@ $< $(ENGINE_TEST_SRC) $(OUT)/libcu.a $(LDLIBS)

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)

run: deps all
	./$(OUT)/cunicorn --chdir examples hello:app --access-logfile -

deps:
	@PYTHON=$(PYTHON) sh tools/ensure-deps.sh build

test-deps:
	@PYTHON=$(PYTHON) sh tools/ensure-deps.sh test

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t || fail=1; done; exit $$fail

# Sanitizer runtime options for every test run (harmless for the normal build).
export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS := suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

integration: all
	CUNICORN_BIN=$(CURDIR)/$(OUT)/cunicorn $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration tests/conformance

# The whole suite: normal build, then the sanitizer build (unit + integration again).
test: test-deps
	$(MAKE) format-check
	$(MAKE) BUILD=release unit integration
	$(MAKE) BUILD=asan unit integration
	@if command -v clang >/dev/null 2>&1; then $(MAKE) fuzz FUZZ_SECONDS=15; \
	else echo "fuzz: clang not installed, skipped (tools/ensure-deps.sh test installs it)"; fi

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'tools/*.c')

format-check:
	@if command -v clang-format >/dev/null; then \
	  out=$$(for f in $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'tools/*.c'); do clang-format --dry-run -Werror $$f 2>&1 >/dev/null | head -3; done); \
	  if [ -n "$$out" ]; then echo "$$out"; echo "format-check: run 'make format'"; exit 1; fi; \
	  echo "format-check: ok"; \
	else echo "format-check: clang-format not installed, skipped"; fi

# libFuzzer targets (clang): each runs FUZZ_SECONDS on a scratch copy of its seed corpus,
# ASan+UBSan on; an input slower than 10 s counts as a crash (a hang).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := h1 chunked proxy conn tls
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc
FUZZ_SRC := src/http/h1.c src/http/chunked.c src/net/proxy.c src/core/core.c
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $< $(FUZZ_SRC) -o $@
# The whole-connection target drives the real engine, connection and response code with a
# stub dispatch: everything below py/ plus workers/engine.c, no Python.
FUZZ_CONN_SRC := $(CORE_SRC) src/workers/engine.c src/workers/settings.c src/workers/blocking.c src/workers/h2.c
build/fuzz/fuzz_conn: tests/fuzz/fuzz_conn.c $(FUZZ_CONN_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $< $(FUZZ_CONN_SRC) $(SSL_LIBS) -lpthread $(NGHTTP2_LIBS) -o $@
# The TLS handshake target: ClientHello bytes through the real server context and transport.
FUZZ_TLS_SRC := src/net/tls.c src/core/core.c src/core/log.c src/core/clock.c
build/fuzz/fuzz_tls: tests/fuzz/fuzz_tls.c $(FUZZ_TLS_SRC) src/net/tls.h src/net/transport.h
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $(SSL_CFLAGS) $< $(FUZZ_TLS_SRC) $(SSL_LIBS) -lpthread -o $@

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  scratch=$$(mktemp -d); \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS)s"; \
	  ./build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -dict=tests/fuzz/http.dict -max_len=4096 \
	    -artifact_prefix=build/fuzz/crash-$$t- -print_final_stats=1 $$scratch tests/fuzz/corpus/fuzz_$$t 2>&1 | \
	    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|fuzz_conn:)" || true; \
	  rm -rf $$scratch; \
	  if ls build/fuzz/crash-$$t-* >/dev/null 2>&1; then echo "fuzz_$$t: crash found"; exit 1; fi; \
	done

bench: all
	$(PYTHON) bench/run.py

clean:
	rm -rf build
