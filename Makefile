# Release builds and installation, with the variables packagers expect.
#   make install [DESTDIR=...] [PREFIX=/usr/local] [CNI_BIN_DIR=/opt/cni/bin] [BIN_DIR=$(PREFIX)/bin]
#   make uninstall (same variables)
PREFIX ?= /usr/local
BIN_DIR ?= $(PREFIX)/bin
CNI_BIN_DIR ?= /opt/cni/bin
DESTDIR ?=

# The CNI plugins are one executable, berth-cni, installed in CNI_BIN_DIR and hard-linked
# there under each plugin's type name (`berth-cni --list`); programs go to BIN_DIR.
PROGRAMS := berth berth-dns berth-proxy

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
# Static Swift runtime: the binaries run on hosts without a Swift toolchain.
RELEASE_FLAGS := -c release --static-swift-stdlib
RELEASE_DIR = $(shell $(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)

.PHONY: all release install uninstall test demo clean

all: release

release:
	$(SWIFT) build $(RELEASE_FLAGS)

install: release
	install -d "$(DESTDIR)$(CNI_BIN_DIR)" "$(DESTDIR)$(BIN_DIR)"
	install -m 0755 -s "$(RELEASE_DIR)/berth-cni" "$(DESTDIR)$(CNI_BIN_DIR)/berth-cni"
	for p in $$("$(RELEASE_DIR)/berth-cni" --list); do \
	  ln -f "$(DESTDIR)$(CNI_BIN_DIR)/berth-cni" "$(DESTDIR)$(CNI_BIN_DIR)/$$p"; done
	for p in $(PROGRAMS); do install -m 0755 -s "$(RELEASE_DIR)/$$p" "$(DESTDIR)$(BIN_DIR)/$$p"; done

uninstall:
	if [ -x "$(DESTDIR)$(CNI_BIN_DIR)/berth-cni" ]; then \
	  for p in $$("$(DESTDIR)$(CNI_BIN_DIR)/berth-cni" --list); do \
	    if [ "$(DESTDIR)$(CNI_BIN_DIR)/$$p" -ef "$(DESTDIR)$(CNI_BIN_DIR)/berth-cni" ]; then rm -f "$(DESTDIR)$(CNI_BIN_DIR)/$$p"; fi; done; \
	  rm -f "$(DESTDIR)$(CNI_BIN_DIR)/berth-cni"; fi
	for p in $(PROGRAMS); do rm -f "$(DESTDIR)$(BIN_DIR)/$$p"; done

test:
	scripts/test

demo:
	scripts/demo

clean:
	rm -rf .build
