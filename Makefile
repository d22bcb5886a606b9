# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first.

CARGO ?= cargo

.PHONY: run test deps build check fmt

run: deps
	$(CARGO) build --release --locked
	./target/release/ferrocast serve

test: deps
	$(CARGO) fmt --all --check
	FERROCAST_TEST_POSTGRES_URL="$$(scripts/ensure-postgres.sh)" && export FERROCAST_TEST_POSTGRES_URL && \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --locked

check:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all
