# Release builds and installation, with the variables packagers expect.
#   make install [DESTDIR=...] [PREFIX=/usr/local] [CNI_BIN_DIR=/opt/cni/bin] [BIN_DIR=$(PREFIX)/bin]
#   make uninstall (same variables)
PREFIX ?= /usr/local
BIN_DIR ?= $(PREFIX)/bin
CNI_BIN_DIR ?= /opt/cni/bin
DESTDIR ?=

# CNI plugins go to CNI_BIN_DIR under their type names; programs go to BIN_DIR.
PLUGINS := loopback none
PROGRAMS := berth-proxy

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
# Static Swift runtime: the binaries run on hosts without a Swift toolchain.
RELEASE_FLAGS := -c release --static-swift-stdlib
RELEASE_DIR = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)

.PHONY: all release install uninstall test demo clean

all: release

release:
	$(SWIFT) build $(RELEASE_FLAGS)

install: release
	install -d "$(DESTDIR)$(CNI_BIN_DIR)"
	for p in $(PLUGINS); do install -m 0755 -s "$(RELEASE_DIR)/$$p" "$(DESTDIR)$(CNI_BIN_DIR)/$$p"; done
ifneq ($(strip $(PROGRAMS)),)
	install -d "$(DESTDIR)$(BIN_DIR)"
	for p in $(PROGRAMS); do install -m 0755 -s "$(RELEASE_DIR)/$$p" "$(DESTDIR)$(BIN_DIR)/$$p"; done
endif

uninstall:
	for p in $(PLUGINS); do rm -f "$(DESTDIR)$(CNI_BIN_DIR)/$$p"; done
	for p in $(PROGRAMS); do rm -f "$(DESTDIR)$(BIN_DIR)/$$p"; done

test:
	scripts/test

demo:
	scripts/demo

clean:
	rm -rf .build
