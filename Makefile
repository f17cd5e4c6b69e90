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

# The version is written once, in python/cunicorn/_version.py; the C code gets it as
# CU_VERSION and every object is rebuilt when it changes.
VERSION := $(shell sed -n 's/^__version__ = "\([^"]*\)"$$/\1/p' python/cunicorn/_version.py)
ifeq ($(VERSION),)
$(error no __version__ line in python/cunicorn/_version.py)
endif
VERSION_DEF := -DCU_VERSION='"$(VERSION)"'

NO_PYCONFIG := error: no python3-config for $(PYTHON) (the headers and libpython to embed it); install python3-dev (Debian/Ubuntu: apt-get install python3-dev), python3-devel (Fedora: dnf install python3-devel) or python3-dev (Alpine: apk add python3-dev), or choose another PYTHON=...

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Isrc -pthread -fno-strict-aliasing $(VERSION_DEF)

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
# zlib: WebSocket permessage-deflate (http/ws_deflate.c)
ZLIB_CFLAGS := $(shell pkg-config --cflags zlib 2>/dev/null)
ZLIB_LIBS := $(shell pkg-config --libs zlib 2>/dev/null || echo -lz)
CFLAGS += $(ZLIB_CFLAGS)
# libnghttp2: HTTP/2 (workers/h2.c)
NGHTTP2_CFLAGS := $(shell pkg-config --cflags libnghttp2 2>/dev/null)
NGHTTP2_LIBS := $(shell pkg-config --libs libnghttp2 2>/dev/null || echo -lnghttp2)
CFLAGS += $(NGHTTP2_CFLAGS)
LDLIBS := $(SSL_LIBS) -lpthread -lm $(ZLIB_LIBS) $(NGHTTP2_LIBS)

# Everything below py/ builds without Python: unit tests and fuzzers link libcu.a only.
CORE_SRC := $(wildcard src/core/*.c src/event/*.c src/net/*.c src/http/*.c src/config/*.c src/log/*.c src/ctl/*.c) \
            src/dirty/proto.c src/dirty/stash.c
PY_SRC := $(wildcard src/py/*.c)
APP_SRC := $(wildcard src/proc/*.c src/workers/*.c) src/main.c \
           $(filter-out src/dirty/proto.c src/dirty/stash.c,$(wildcard src/dirty/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(OUT)/obj/%.o)
# The server's own Python (src/py/lib/*.py), embedded as C arrays by tools/embed_py.py.
PY_LIB := $(wildcard src/py/lib/*.py)
PY_EMBED_C := $(OUT)/gen/py_embedded.c
PY_OBJ := $(PY_SRC:%.c=$(OUT)/obj/%.o) $(OUT)/obj/gen/py_embedded.o
APP_OBJ := $(APP_SRC:%.c=$(OUT)/obj/%.o)

# Unit tests mirror src/: tests/unit/<layer>/test_*.c, sharing tests/unit/t.h.
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)

.PHONY: all run test unit integration lint-py test-py conformance deps test-deps clean format format-check bench fuzz asan

all: $(OUT)/cunicorn $(OUT)/cunicornc

# The control-socket client: libc only.
$(OUT)/cunicornc: tools/cunicornc.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDSAN) -o $@ $<

$(OUT)/libcu.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(OUT)/cunicorn: $(APP_OBJ) $(PY_OBJ) $(OUT)/libcu.a
	@test -n "$(PYCONFIG)" || { echo "$(NO_PYCONFIG)" >&2; exit 1; }
	$(CC) $(LDSAN) -o $@ $(APP_OBJ) $(PY_OBJ) $(OUT)/libcu.a $(PY_LDFLAGS) $(LDLIBS)

$(OUT)/obj/src/py/%.o: src/py/%.c
	@mkdir -p $(@D)
	@test -n "$(PYCONFIG)" || { echo "$(NO_PYCONFIG)" >&2; exit 1; }
	$(CC) $(CFLAGS) $(PY_INCLUDES) -MMD -MP -c -o $@ $<

$(PY_EMBED_C): tools/embed_py.py $(PY_LIB)
	@mkdir -p $(@D)
	$(PYTHON) tools/embed_py.py $(PY_LIB) > $@.tmp && mv $@.tmp $@

$(OUT)/obj/gen/py_embedded.o: $(PY_EMBED_C) src/py/embedded.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(OUT)/tests/%: tests/unit/%.c $(OUT)/libcu.a tests/unit/t.h $(wildcard tests/unit/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDSAN) -Itests/unit -o $@ $< $(OUT)/libcu.a $(LDLIBS)

# The engine's unit test links the engine itself (workers/ without Python).
ENGINE_TEST_SRC := src/workers/engine.c src/workers/settings.c src/workers/blocking.c src/workers/h2.c
$(OUT)/tests/workers/test_engine: tests/unit/workers/test_engine.c $(ENGINE_TEST_SRC) $(OUT)/libcu.a tests/unit/t.h
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

# The embedded Python: pyflakes, then its unit tests (they import src/py/lib directly).
lint-py:
	$(PYTHON) -m pyflakes src/py/lib tests/py tests/integration/*.py tests/conformance tests/fuzz bench tools/embed_py.py tools/py_from_c_literal.py

test-py: lint-py
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/py

# Time bounds in the tests are scaled x3 for the sanitizer build (tests/integration/server.py).
integration: all
	CUNICORN_BIN=$(CURDIR)/$(OUT)/cunicorn $(if $(filter asan,$(BUILD)),CUNICORN_TIME_SCALE=3) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration tests/conformance

# The whole suite: normal build, then the sanitizer build (unit + integration again).
test: test-deps
	$(MAKE) format-check
	$(MAKE) test-py
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
FUZZ_TARGETS := h1 chunked proxy conn uwsgi dirty tls ws
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc
FUZZ_SRC := src/http/h1.c src/http/req.c src/http/chunked.c src/http/uwsgi.c src/net/proxy.c src/core/core.c \
            src/core/buf.c src/http/ws.c
build/fuzz/fuzz_dirty: tests/fuzz/fuzz_dirty.c src/dirty/proto.c src/dirty/proto.h src/core/buf.c src/core/core.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $< src/dirty/proto.c src/core/buf.c src/core/core.c -o $@
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRC)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $< $(FUZZ_SRC) -o $@
# The whole-connection target drives the real engine, connection and response code with a
# stub dispatch: everything below py/ plus workers/engine.c, no Python.
FUZZ_CONN_SRC := $(CORE_SRC) src/workers/engine.c src/workers/settings.c src/workers/blocking.c src/workers/h2.c
build/fuzz/fuzz_conn: tests/fuzz/fuzz_conn.c $(FUZZ_CONN_SRC) $(wildcard src/*/*.h)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $< $(FUZZ_CONN_SRC) $(SSL_LIBS) -lpthread $(ZLIB_LIBS) $(NGHTTP2_LIBS) -o $@
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

# The version (python/cunicorn/_version.py, top of this file) reaches every object.
$(CORE_OBJ) $(PY_OBJ) $(APP_OBJ) $(UNIT_BIN): python/cunicorn/_version.py
FUZZ_CFLAGS += $(VERSION_DEF)

.PHONY: install uninstall docs-gen

# ---- install: the binaries, a man page and the bash completion, both generated from the
# settings table by the binary itself (config/gen.c), and the `cunicorn` Python package in
# PREFIX/lib/cunicorn/python, where the installed binary looks for it (py/runtime.c).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
PYPKGDIR := $(PREFIX)/lib/cunicorn/python

$(OUT)/cunicorn.1: $(OUT)/cunicorn
	$< --print-man-page > $@.tmp && mv $@.tmp $@

$(OUT)/bash-completion/cunicorn: $(OUT)/cunicorn
	@mkdir -p $(@D)
	$< --print-bash-completion > $@.tmp && mv $@.tmp $@

docs-gen: $(OUT)/cunicorn.1 $(OUT)/bash-completion/cunicorn

install: all docs-gen
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR)
	install -m 755 $(OUT)/cunicorn $(OUT)/cunicornc $(DESTDIR)$(BINDIR)/
	install -m 644 $(OUT)/cunicorn.1 $(DESTDIR)$(MANDIR)/man1/cunicorn.1
	install -m 644 $(OUT)/bash-completion/cunicorn $(DESTDIR)$(BASHCOMPDIR)/cunicorn
	rm -rf $(DESTDIR)$(PYPKGDIR)/cunicorn
	cd python && find cunicorn -name '*.py' | while read -r f; do \
	  install -D -m 644 "$$f" "$(DESTDIR)$(PYPKGDIR)/$$f" || exit 1; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cunicorn $(DESTDIR)$(BINDIR)/cunicornc
	rm -f $(DESTDIR)$(MANDIR)/man1/cunicorn.1 $(DESTDIR)$(BASHCOMPDIR)/cunicorn
	rm -rf $(DESTDIR)$(PREFIX)/lib/cunicorn

bench: all
	$(PYTHON) bench/run.py

clean:
	rm -rf build
