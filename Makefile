# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first.

CARGO ?= cargo

.PHONY: run test deps build check fmt

run: deps
	$(CARGO) run --release --locked -- serve

# Formatting is checked after the tests, so a formatting slip never hides the test results; it still
# fails the target.
test: deps
	url="$$(scripts/ensure-postgres.sh)" || exit 1; \
	export FERROCAST_TEST_POSTGRES_URL="$$url"; \
	status=0; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast || status=$$?; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast || status=$$?; \
	fi; \
	$(CARGO) fmt --all --check || { echo "formatting differs: run 'make fmt'" >&2; [ $$status -ne 0 ] || status=1; }; \
	exit $$status

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --locked

check:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all
