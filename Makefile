# aurorabox — see README.md. `make run` and `make test` are the two set-up commands.
GO       ?= go
BIN      := bin/aurorabox
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PREFIX   ?= /usr/local
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build install run test test-race e2e bench lint clean

all: build

# A static binary (no cgo: user lookups read /etc/passwd and /etc/group), so
# that it runs on any Linux and each executor maps no C libraries.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/aurorabox

# The binary also acts as Aurora's clients when called by these names.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/aurorabox
	ln -sf aurorabox $(DESTDIR)$(PREFIX)/bin/aurora
	ln -sf aurorabox $(DESTDIR)$(PREFIX)/bin/aurora_admin

# Foreground appliance on the embedded defaults; Ctrl-C stops it. ARGS="--ports auto" etc.
run: build
	$(BIN) up $(ARGS)

# Unit and fast integration tests (hermetic: temp dirs, random ports).
test:
	$(GO) test -count=1 ./...

# The packages with concurrency again under the race detector, one package
# at a time (their tests start servers and processes and are timing-bound).
RACE_PKGS := ./scheduler/... ./appliance/mesos/agent/... ./appliance/mesos/master/... \
	./executor/... ./appliance/zookeeper/... ./appliance/supervise/... ./images/
test-race:
	$(GO) test -race -count=1 -p 1 -timeout 30m $(RACE_PKGS)

# End-to-end tests against the built binary: whole appliances on random ports.
e2e: build
	AURORABOX_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -tags e2e -timeout 30m ./e2e/...

# Benchmarks, several runs each so benchstat can take medians; each baseline
# runs in the same invocation as what it is compared with. The task launch
# benchmarks take a fixed number of iterations (20 launches: the median the
# Mesos issue asks for; 3 rounds of 200 tasks). The master's: offers per
# second to 3 frameworks over 10 agents, and one framework's DECLINE to
# another's OFFERS (median-ns/offer).
bench: build
	{ AURORABOX_BIN=$(CURDIR)/$(BIN) AURORABOX_ZKCOMPAT_OURS=subprocess AURORABOX_REQUIRE_REALZK=1 $(GO) test -run '^$$' -bench . -count 5 -tags e2e -timeout 30m ./appliance/zookeeper/... ./e2e/... && \
	  $(GO) test -run '^$$' -bench 'OfferToRunning|ForkExecBaseline' -benchtime 20x -count 5 -timeout 20m ./appliance/mesos/agent/ && \
	  $(GO) test -run '^$$' -bench Launch200 -benchtime 3x -count 3 -timeout 20m ./appliance/mesos/agent/ && \
	  $(GO) test -run '^$$' -bench . -count 5 -timeout 20m ./appliance/mesos/master/ && \
	  AURORABOX_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime 3x -count 3 -timeout 20m ./executor/... && \
	  $(GO) test -run '^$$' -bench 'PullCold|PrepareWarm' -benchtime 20x -count 5 -timeout 20m ./images/ && \
	  $(GO) test -run '^$$' -bench . -count 5 -timeout 20m ./scheduler/... ; } | tee bench.txt

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin bench.txt
