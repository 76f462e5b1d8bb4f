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

.PHONY: all build deps test bench fuzz lint run clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/ctrfs ./cmd/ctrfs-shim

# Installs runc, fuse3, busybox-static, inotify-tools and criu when missing (as root).
deps:
	@scripts/deps.sh

# Unit tests, the fuzz seed corpus, and the end-to-end tests (real FUSE,
# daemon, shim and runc). Set CTRFS_REQUIRE_INTEGRATION=1 to make a missing
# prerequisite fail the run instead of skipping.
test: deps build lint
	$(GO) test -count=1 -timeout 40m ./...

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
