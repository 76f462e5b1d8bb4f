# ctrfs — containers as files. See README.md.
GO          ?= go
BIN         := bin
MOUNTPOINT  ?= /mnt/ctr
STATE_DIR   ?= /run/ctrfs
DEMO_BUNDLE ?= /var/lib/ctrfs/bundles/demo
DEMO_IMAGE  ?= /var/lib/ctrfs/demo-image.tar
BENCHTIME   ?= 30x
STATE_BENCHTIME ?= 300x
THROUGHPUT_BENCHTIME ?= 3x
EXIT_BENCHTIME ?= 40x
TABLE_BENCHTIME ?= 30x
SCALE_N ?= 1000

.PHONY: all build deps test test-host critest test-vm test-vm-v2 test-vm-v1 vm-image bench bench-fuse bench-scale fuzz lint run clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/ctrfs ./cmd/ctrfs-shim ./cmd/ctrfs-cri

# The kubelet of TestKubelet (k8s.io/kubernetes v1.37.2 from the Go module
# proxy), built once into ~/.cache/ctrfs-test (minutes when cold); the test
# builds it too when it is missing.
.PHONY: kubelet
kubelet:
	tests/kubelet/build.sh

# Installs runc, fuse3, busybox-static, inotify-tools and criu when missing (as root).
deps:
	@scripts/deps.sh

# The host suite, then the end-to-end suite in both guests (cgroup v2 and v1,
# kernel 6.1, real CRIU) when QEMU is installed. Set
# CTRFS_REQUIRE_INTEGRATION=1 to make a missing prerequisite (QEMU too) fail
# the run instead of skipping.
test: test-host
	@if command -v qemu-system-x86_64 >/dev/null 2>&1 || [ "$$CTRFS_REQUIRE_INTEGRATION" = 1 ]; then \
	  $(MAKE) --no-print-directory test-vm; \
	else echo "test: qemu-system-x86_64 missing, guest suites skipped (make deps installs it)"; fi

# Unit tests, the fuzz seed corpus, and the end-to-end tests (real FUSE,
# daemon, shim and runc) on this host.
test-host: deps build lint
	$(GO) test -count=1 -timeout 40m ./...

# critest (the CRI validation suite of cri-tools v1.37.0) against ctrfs-cri,
# offline, alone and verbosely (test-host runs it too; docs/cri.md).
critest: deps build
	CTRFS_REQUIRE_INTEGRATION=$${CTRFS_REQUIRE_INTEGRATION:-1} $(GO) test -count=1 -v -run '^TestCritest$$' -timeout 30m ./tests/

# The end-to-end suite inside QEMU guests (tests/vm, tests/README.md): the
# image is built from Debian's packages once and cached in $(CTRFS_VM_CACHE)
# (default /var/cache/ctrfs-vm). VM_TESTFLAGS go to the test binary, e.g.
# VM_TESTFLAGS='-test.run TestCheckpoint'.
VM_TESTFLAGS ?=
# The v2 guest runs the whole suite (every cgroup path differs there). The v1
# guest runs what this host cannot: real CRIU (the checkpoint tests), on v1;
# the host suite is the v1 run of everything else. VM_TESTFLAGS, when given,
# replaces that choice in both.
VM_V1_TESTFLAGS ?= -test.run Checkpoint
# Both guests run even when the first fails; the target fails if either did.
test-vm: deps
	@rc=0; tests/vm/e2e.sh v2 $(VM_TESTFLAGS) || rc=1; tests/vm/e2e.sh v1 $(or $(VM_TESTFLAGS),$(VM_V1_TESTFLAGS)) || rc=1; exit $$rc

test-vm-v2 test-vm-v1: test-vm-%: deps
	tests/vm/e2e.sh $* $(VM_TESTFLAGS)

vm-image: deps
	tests/vm/build-image.sh

# Benchmarks against bare runc, measured in the same run. The paired ones
# alternate ctrfs and runc in every iteration, which cancels the drift of a
# noisy machine; their ratios are the ones the targets are about.
bench: deps build
	$(GO) test -count=1 -run '^$$' -bench 'CreateStart' -benchtime $(BENCHTIME) -timeout 30m ./tests/
	$(GO) test -count=1 -run '^$$' -bench 'State|Stats' -benchtime $(STATE_BENCHTIME) -timeout 30m ./tests/
	$(GO) test -count=1 -run '^$$' -bench 'ExitWatch' -benchtime $(EXIT_BENCHTIME) -timeout 30m ./tests/
	$(GO) test -count=1 -run '^$$' -bench 'ExecPaired' -benchtime $(BENCHTIME) -timeout 30m ./tests/
	$(GO) test -count=1 -run '^$$' -bench 'StdoutThroughput' -benchtime $(THROUGHPUT_BENCHTIME) -timeout 30m ./tests/
	$(GO) test -count=1 -run '^$$' -bench 'RunImagePaired' -benchtime $(BENCHTIME) -timeout 30m ./tests/
	$(GO) test -count=1 -run '^$$' -bench 'Pull100MB' -benchtime 3x -timeout 30m ./images/
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkTable$$' -benchtime $(TABLE_BENCHTIME) -timeout 60m ./tests/
	$(MAKE) --no-print-directory bench-fuse

# The floor under a read (tools/fusefloor, a module of its own so that ctrfs
# does not depend on go-fuse): one small file served by a minimal file system
# on ctrfs's copy of bazil.org/fuse (third_party/), on upstream bazil.org/fuse
# (stock.mod) and on go-fuse, read by another process, against tmpfs.
bench-fuse:
	@echo "== bazil: ctrfs's copy (third_party/bazil-fuse)"
	cd tools/fusefloor && $(GO) test -count=1 -run '^$$' -bench . -benchtime 5000x .
	@echo "== bazil: upstream bazil.org/fuse"
	cd tools/fusefloor && $(GO) test -modfile=stock.mod -count=1 -run '^$$' -bench '/bazil' -benchtime 5000x .

# Issue 12's scale figures, once: SCALE_N (1,000) containers under one
# daemon: start time at SCALE_N vs the first 20, listing and reads, memory,
# restart after kill -9, teardown.
bench-scale: deps build
	CTRFS_SCALE_N=$(SCALE_N) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -timeout 120m ./tests/

# Fuzzes the ctl parser, exec's JSON form, update's JSON and key=value
# forms, and bundle loading, each for FUZZTIME (30s by default). Their seed
# corpora run in every `go test`.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseCommands$$' -fuzztime $${FUZZTIME:-30s} ./fsys/
	$(GO) test -run '^$$' -fuzz '^FuzzParseExecJSON$$' -fuzztime $${FUZZTIME:-30s} ./fsys/
	$(GO) test -run '^$$' -fuzz '^FuzzParseUpdate$$' -fuzztime $${FUZZTIME:-30s} ./fsys/
	$(GO) test -run '^$$' -fuzz '^FuzzBundleConfig$$' -fuzztime $${FUZZTIME:-30s} ./runtime/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Installs what is missing, builds, makes a demo bundle and a demo image
# (a docker-save tarball built from busybox-static: no network), mounts and serves
# in the foreground (Ctrl-C unmounts; containers keep running).
run: deps build
	$(GO) run ./tests/mkbundle $(DEMO_BUNDLE)
	$(GO) run ./tests/mkimage $(DEMO_IMAGE) demo:latest
	@echo
	@echo "ctrfs: serving $(MOUNTPOINT). In another shell, try:"
	@echo "  echo 'run demo $(DEMO_BUNDLE)' > $(MOUNTPOINT)/ctl"
	@echo "  ls $(MOUNTPOINT); cat $(MOUNTPOINT)/demo/state $(MOUNTPOINT)/demo/pids"
	@echo "  echo pause > $(MOUNTPOINT)/demo/ctl; cat $(MOUNTPOINT)/demo/state"
	@echo "  echo resume > $(MOUNTPOINT)/demo/ctl; echo 'kill TERM' > $(MOUNTPOINT)/demo/ctl"
	@echo "  cat $(MOUNTPOINT)/demo/processes/init/exit; rmdir $(MOUNTPOINT)/demo"
	@echo "  echo 'import demo:latest $(DEMO_IMAGE)' > $(MOUNTPOINT)/images/ctl; cat $(MOUNTPOINT)/images/list"
	@echo "  echo 'run web --image demo:latest' > $(MOUNTPOINT)/ctl; cat $(MOUNTPOINT)/web/processes/init/stdout"
	@echo "  echo 'run sh1 --image demo:latest -- sh -c \"ls /opq; sleep 600\"' > $(MOUNTPOINT)/ctl"
	@echo
	$(BIN)/ctrfs mount --state-dir $(STATE_DIR) $(MOUNTPOINT)

clean:
	rm -rf $(BIN)

# ---- install: binaries, systemd unit, flags file, man page (docs/install.md)
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR  ?= /etc
MANDIR      ?= $(PREFIX)/share/man
# The man page's sections: docs made into ctrfs(8), after the daemon's flags.
MAN_SECTIONS = 'INSTALLING AS A SERVICE=docs/install.md' 'THE FILE TREE=docs/files.md'

.PHONY: man install uninstall

# ctrfs(8) from the daemon's own usage and flags and the docs.
man: build
	$(GO) run ./tools/mkman -ctrfs $(BIN)/ctrfs $(MAN_SECTIONS) > $(BIN)/ctrfs.8.tmp
	mv $(BIN)/ctrfs.8.tmp $(BIN)/ctrfs.8

# The daemon runs the shim beside its own binary, so both go to BINDIR.
# An existing flags file is the admin's: it is kept.
install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BIN)/ctrfs $(BIN)/ctrfs-shim $(BIN)/ctrfs-cri $(DESTDIR)$(BINDIR)/
	@for u in ctrfs ctrfs-cri; do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' contrib/systemd/$$u.service.in > $(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
	  mv $(DESTDIR)$(UNITDIR)/$$u.service.tmp $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; \
	  if [ -e $(DESTDIR)$(SYSCONFDIR)/default/$$u ]; then \
	    echo "kept $(DESTDIR)$(SYSCONFDIR)/default/$$u (the example is contrib/default/$$u)"; \
	  else install -m 0644 contrib/default/$$u $(DESTDIR)$(SYSCONFDIR)/default/$$u || exit 1; fi; \
	done
	install -m 0644 $(BIN)/ctrfs.8 $(DESTDIR)$(MANDIR)/man8/ctrfs.8
	@echo "installed; as root: systemctl daemon-reload && systemctl enable --now ctrfs (and ctrfs-cri for Kubernetes: docs/kubernetes.md)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ctrfs $(DESTDIR)$(BINDIR)/ctrfs-shim $(DESTDIR)$(BINDIR)/ctrfs-cri $(DESTDIR)$(UNITDIR)/ctrfs.service $(DESTDIR)$(UNITDIR)/ctrfs-cri.service $(DESTDIR)$(MANDIR)/man8/ctrfs.8
