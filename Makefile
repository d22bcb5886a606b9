# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first.

CARGO ?= cargo

.PHONY: run test deps deps-test build check fmt web

run: deps web
	$(CARGO) run --release --locked -- serve

# Formatting and clippy are checked after the tests, so a lint never hides the test results; either
# still fails the target, so CI enforces what `make check` promises.
test: deps-test web
	url="$$(scripts/ensure-postgres.sh)" || exit 1; \
	export FERROCAST_TEST_POSTGRES_URL="$$url"; \
	s3="$$(scripts/ensure-s3.sh)" || exit 1; \
	export FERROCAST_TEST_S3_ENDPOINT="$$s3" AWS_ACCESS_KEY_ID=ferrocast AWS_SECRET_ACCESS_KEY=ferrocast-test-secret; \
	status=0; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast || status=$$?; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast || status=$$?; \
	fi; \
	$(CARGO) fmt --all --check || { echo "formatting differs: run 'make fmt'" >&2; [ $$status -ne 0 ] || status=1; }; \
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings || { echo "clippy found problems: run 'make check'" >&2; [ $$status -ne 0 ] || status=1; }; \
	exit $$status

deps:
	@scripts/install-deps.sh

# Also Chromium, for the browser tests (tests/browser.rs).
deps-test:
	@scripts/install-deps.sh --test

# The web UI (web/): npm packages from the lock file, then the static build in web/dist that
# `ferrocast serve` serves. Each step runs only when its inputs changed.
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/build.mjs

web: web/dist/index.html

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build

build: deps
	$(CARGO) build --locked

check:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all
