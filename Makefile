# llmproxy: nginx module + llmproxyctl.  `make`, `make run`, `make test`.
SHELL := /bin/bash

NGINX_SRC   ?= /usr/share/nginx/src
NGINX_BIN   ?= /usr/sbin/nginx
BUILD       := build
NGX_BUILD   := $(BUILD)/nginx
CC          ?= cc
CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration
CPPFLAGS    += -Icommon

COMMON_SRCS := $(wildcard common/*.c)
COMMON_HDRS := $(wildcard common/*.h)
CLI_SRCS    := $(wildcard cli/*.c)
CLI_HDRS    := $(wildcard cli/*.h)
MOD_SRCS    := $(wildcard ngx_llmproxy_module/*.c)
MOD_HDRS    := $(wildcard ngx_llmproxy_module/*.h)
CLI_LIBS    := -lcjson -lcurl -lpq -lcrypto -lyaml -lz -lm

UNIT_SRCS   := $(wildcard t/unit/test_*.c)
UNIT_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
ASAN_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit-asan/%,$(UNIT_SRCS))
SAN_FLAGS   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined

.PHONY: all module module-asan cli ui deps run test unit unit-asan integration bench lint \
        fuzz callgraph clean

all: module cli ui

module: $(BUILD)/ngx_http_llmproxy_module.so
cli: $(BUILD)/llmproxyctl

# The module builds against Debian's nginx-dev tree with Debian's own
# configure flags, so the .so loads into /usr/sbin/nginx.
$(NGX_BUILD)/objs/Makefile: config
	@test -d $(NGINX_SRC) || { echo "nginx-dev missing: run scripts/deps.sh"; exit 1; }
	rm -rf $(NGX_BUILD) && mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --add-dynamic-module=$(CURDIR) \
	    > configure.log 2>&1 || { tail -30 configure.log; exit 1; }



$(BUILD)/ngx_http_llmproxy_module.so: $(NGX_BUILD)/objs/Makefile $(MOD_SRCS) \
        $(MOD_HDRS) $(COMMON_SRCS) $(COMMON_HDRS)
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	@# a new file renamed into place: a running nginx keeps the old one
	@# mapped (cp over it would change the pages under its workers)
	cp $(NGX_BUILD)/objs/ngx_http_llmproxy_module.so $@.tmp
	mv -f $@.tmp $@

# The same module under AddressSanitizer, for make test's run of the
# records and streaming tests: nginx loads it with libasan preloaded
# (scripts/nginx-asan.sh), since /usr/sbin/nginx is not built with it.
NGX_ASAN    := $(BUILD)/nginx-asan

$(NGX_ASAN)/objs/Makefile: $(NGX_BUILD)/objs/Makefile
	rm -rf $(NGX_ASAN)
	cp -r $(NGX_BUILD) $(NGX_ASAN)
	find $(NGX_ASAN)/objs/addon -name '*.o' -delete
	rm -f $(NGX_ASAN)/objs/*.so \
	    $(NGX_ASAN)/objs/ngx_http_llmproxy_module_modules.o
	sed -i -e 's/^CFLAGS = .*/& -fsanitize=address -fno-omit-frame-pointer/' \
	    -e 's/^LINK =.*/& -fsanitize=address/' $(NGX_ASAN)/objs/Makefile

$(BUILD)/asan/ngx_http_llmproxy_module.so: $(NGX_ASAN)/objs/Makefile \
        $(MOD_SRCS) $(MOD_HDRS) $(COMMON_SRCS) $(COMMON_HDRS)
	$(MAKE) -s -C $(NGX_ASAN) -f objs/Makefile modules
	@mkdir -p $(BUILD)/asan
	cp $(NGX_ASAN)/objs/ngx_http_llmproxy_module.so $@.tmp
	mv -f $@.tmp $@

module-asan: $(BUILD)/asan/ngx_http_llmproxy_module.so

SCHEMA      := $(sort $(wildcard configs/schema/*.sql))

$(BUILD)/llmp_schema.h: $(SCHEMA) scripts/embed-schema.sh
	@mkdir -p $(BUILD)
	bash scripts/embed-schema.sh $(SCHEMA) > $@

$(BUILD)/llmp_prices_json.h: configs/prices.json scripts/embed-prices.sh
	@mkdir -p $(BUILD)
	bash scripts/embed-prices.sh configs/prices.json > $@

$(BUILD)/llmproxyctl: $(CLI_SRCS) $(CLI_HDRS) $(COMMON_SRCS) $(COMMON_HDRS) \
        $(BUILD)/llmp_schema.h $(BUILD)/llmp_prices_json.h
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -I$(BUILD) -I/usr/include/postgresql \
	    -o $@ $(CLI_SRCS) $(COMMON_SRCS) $(CLI_LIBS)

# The dashboard: its static files and the chart library (uPlot, pinned in
# package-lock.json) copied side by side: no bundler, no CDN.
UI_SRCS     := $(wildcard ui/*.html ui/*.js ui/*.css)
UI_LIB      := node_modules/uplot/dist/uPlot.iife.min.js \
               node_modules/uplot/dist/uPlot.min.css

ui: $(BUILD)/ui/index.html

$(BUILD)/ui/index.html: $(UI_SRCS) $(UI_LIB)
	@mkdir -p $(BUILD)/ui
	cp $(UI_SRCS) $(UI_LIB) $(BUILD)/ui/
	@touch $@

$(UI_LIB):
	@echo "$@ missing: run scripts/deps.sh (npm ci)"; exit 1

# Unit tests: one executable per concern; each #includes what it tests.
$(BUILD)/unit/%: t/unit/%.c $(COMMON_SRCS) $(COMMON_HDRS)
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -It/unit -o $@ $< $(COMMON_SRCS) \
	    -lcjson -lcrypto -lm

$(BUILD)/unit-asan/%: t/unit/%.c $(COMMON_SRCS) $(COMMON_HDRS)
	@mkdir -p $(BUILD)/unit-asan
	$(CC) $(SAN_FLAGS) $(WARN) $(CPPFLAGS) -It/unit -o $@ $< $(COMMON_SRCS) \
	    -lcjson -lcrypto -lm

deps:
	@bash scripts/deps.sh

run: deps all
	@bash scripts/run.sh

unit: $(UNIT_BINS)
	@bash t/run-unit.sh $(UNIT_BINS)

unit-asan: $(ASAN_BINS)
	@bash t/run-unit.sh $(ASAN_BINS)

integration: all
	@bash t/run-integration.sh

# libFuzzer targets of the translation library and the body scanner
# (clang), FUZZ_SECONDS each (default 10), FUZZ_TARGETS to pick some; make
# test runs them all from t/run-all.sh for 10 s each.
fuzz:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-$(FUZZ_SECONDS)} \
	    FUZZ_TARGETS="$${FUZZ_TARGETS:-$(FUZZ_TARGETS)}" bash t/run-fuzz.sh

test: deps all $(UNIT_BINS) $(ASAN_BINS) module-asan
	@bash t/run-all.sh

bench: deps all
	@bash bench/run.sh

lint:
	@! grep -rnE --include='*.[ch]' '.{81,}|[[:space:]]$$|	|^[^"]*//' \
	    ngx_llmproxy_module common cli || { echo "style errors"; exit 1; }

# the files' call graph against the floors of scripts/layers.txt
callgraph: module
	@bash scripts/callgraph.sh

clean:
	rm -rf $(BUILD)
