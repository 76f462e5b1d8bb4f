# ctrfs — containers as files. See README.md.
GO          ?= go
BIN         := bin
MOUNTPOINT  ?= /mnt/ctr
STATE_DIR   ?= /run/ctrfs
DEMO_BUNDLE ?= /var/lib/ctrfs/bundles/demo
BENCHTIME   ?= 30x
STATE_BENCHTIME ?= 300x
THROUGHPUT_BENCHTIME ?= 3x
EXIT_BENCHTIME ?= 40x

.PHONY: all build deps test test-host test-vm test-vm-v2 test-vm-v1 vm-image bench fuzz lint run clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/ctrfs ./cmd/ctrfs-shim

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

# The end-to-end suite inside QEMU guests (tests/vm, tests/README.md): the
# image is built from Debian's packages once and cached in $(CTRFS_VM_CACHE)
# (default /var/cache/ctrfs-vm). VM_TESTFLAGS go to the test binary, e.g.
# VM_TESTFLAGS='-test.run TestCheckpoint'.
VM_TESTFLAGS ?=
# Both guests run even when the first fails; the target fails if either did.
test-vm: deps
	@rc=0; tests/vm/e2e.sh v2 $(VM_TESTFLAGS) || rc=1; tests/vm/e2e.sh v1 $(VM_TESTFLAGS) || rc=1; exit $$rc

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
	$(GO) test -count=1 -run '^$$' -bench 'Pull100MB' -benchtime 3x -timeout 30m ./images/

# Fuzzes the ctl parser (FUZZTIME=30s by default).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseCommands -fuzztime $${FUZZTIME:-30s} ./fsys/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Installs what is missing, builds, makes a demo bundle, mounts and serves
# in the foreground (Ctrl-C unmounts; containers keep running).
run: deps build
	$(GO) run ./tests/mkbundle $(DEMO_BUNDLE)
	@echo
	@echo "ctrfs: serving $(MOUNTPOINT). In another shell, try:"
	@echo "  echo 'run demo $(DEMO_BUNDLE)' > $(MOUNTPOINT)/ctl"
	@echo "  ls $(MOUNTPOINT); cat $(MOUNTPOINT)/demo/state $(MOUNTPOINT)/demo/pids"
	@echo "  echo pause > $(MOUNTPOINT)/demo/ctl; cat $(MOUNTPOINT)/demo/state"
	@echo "  echo resume > $(MOUNTPOINT)/demo/ctl; echo 'kill TERM' > $(MOUNTPOINT)/demo/ctl"
	@echo "  cat $(MOUNTPOINT)/demo/processes/init/exit; rmdir $(MOUNTPOINT)/demo"
	@echo
	$(BIN)/ctrfs mount --state-dir $(STATE_DIR) $(MOUNTPOINT)

clean:
	rm -rf $(BIN)
