# Switchboard: `make run` serves the app with embedded defaults; `make test` installs what the tests
# need and runs them (CI's .ci/run calls exactly `make test`).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The PostgreSQL pass of `make test`; pytest-django creates and drops test_<name> on it.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/switchboard
PYTEST_ARGS ?=
# Two workers (pytest-xdist): the end-to-end tests on one, the in-process tests on the other, each in order (conftest.py).
PYTEST_WORKERS ?= -n 2 --dist loadgroup

.PHONY: run lint test test-sqlite test-postgres bench bench-progress bench-admin-reply bench-faults bench-floods bench-soak bench-compare bench-alternate bench-adapters bench-chat bench-idle bench-heap bench-storm bench-footprint bench-chat-page clean

$(VENV)/.installed: requirements.txt
	@echo "== install requirements.txt into $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

## run: install, migrate, create the demo users and conversation, serve on http://127.0.0.1:8000 with the batch worker
run: $(VENV)/.installed
	@$(PY) scripts/port_free.py 8000
	@echo "== migrate the database"
	@$(PY) manage.py migrate --noinput
	@echo "== demo data"
	@$(PY) manage.py seed_demo
	@# Without REDIS_URL the batch worker runs inside the server (README "Batch tasks"); with it, beside it.
	@if [ -n "$$REDIS_URL" ]; then \
		echo "== batch worker (manage.py db_worker) beside the server: REDIS_URL is set"; \
		setsid $(PY) manage.py db_worker & worker=$$!; trap 'kill -- -$$worker 2>/dev/null' EXIT INT TERM; \
	fi; \
	echo "== server on http://127.0.0.1:8000 (manage.py runserver)"; \
	$(PY) manage.py runserver 127.0.0.1:8000

## lint: ruff's lint and format checks, and the layers of realtime/ (import-linter); settings in pyproject.toml
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# axe-core for the browser tests' accessibility audit (tests/e2e/axe: its package-lock.json pins
# it; npm ci installs exactly that; the pages never load it, the tests inject it).
AXE := tests/e2e/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/e2e/axe/package-lock.json
	npm ci --prefix tests/e2e/axe --no-audit --no-fund
	touch $@

## test: lint, Chromium and axe-core for the browser tests, nginx for the deploy test, a throwaway Redis, the whole suite on SQLite, then on PostgreSQL when one answers
test: lint $(AXE)
	scripts/ensure-browser.sh
	scripts/ensure-nginx.sh
	scripts/with-redis.sh $(MAKE) --no-print-directory test-sqlite test-postgres

test-sqlite: $(VENV)/.installed-dev
	env -u DATABASE_URL $(PY) -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-postgres: $(VENV)/.installed-dev
	@if $(PY) scripts/db_ready.py "$(TEST_POSTGRES_URL)"; then \
		echo "== PostgreSQL pass: $(TEST_POSTGRES_URL) (the tests whose outcome can depend on the engine)"; \
		DATABASE_URL="$(TEST_POSTGRES_URL)" $(PY) -m pytest -m "not any_database and not browser" $(PYTEST_WORKERS) $(PYTEST_ARGS); \
	else \
		echo "== PostgreSQL pass NOT RUN: no server answers at $(TEST_POSTGRES_URL) (set TEST_POSTGRES_URL)"; \
	fi

$(VENV)/.installed-bench: $(VENV)/.installed-dev requirements-bench.txt
	$(PY) -m pip install -q -r requirements-bench.txt
	touch $@

## bench: fan-out benchmark (docs in README); not part of `make test`
bench: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/fanout.py $(BENCH_ARGS)

## bench-progress: batch-task benchmarks (coalescing fan-out, DOCX generation); not part of `make test`
bench-progress: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/progress.py $(BENCH_ARGS)

## bench-admin-reply: support desk reply (admin form) -> user socket latency, 100 replies; not part of `make test`
bench-admin-reply: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/admin_reply.py $(BENCH_ARGS)

## bench-faults: 10,000 chat messages across 3 Redis restarts and 2 Daphne kills (its own Redis); not part of `make test`
bench-faults: $(VENV)/.installed-bench
	$(PY) bench/faults.py $(BENCH_ARGS)

## bench-floods: other users' latency during a rate flood, a connect loop and a subscription flood; not part of `make test`
bench-floods: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/floods.py $(BENCH_ARGS)

## bench-chat: chat throughput, 200 clients in rooms of 10, offered rate stepped, every message persisted; not part of `make test`
bench-chat: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/chat_rate.py $(BENCH_ARGS)

## bench-idle: 1,000 / 5,000 / 10,000 idle connections: RSS per connection, connect rate; not part of `make test`
bench-idle: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/idle.py $(BENCH_ARGS)

## bench-heap: the Python heap of an idle connection under tracemalloc, by package and by Switchboard module; not part of `make test`
bench-heap: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/heap.py $(BENCH_ARGS)

## bench-storm: 5,000 clients in conversations of 10, the server SIGTERMed and restarted: reconnects, resumes, messages sent meanwhile; not part of `make test`
bench-storm: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/storm.py $(BENCH_ARGS)

## bench-footprint: Redis keys, bytes and commands, database rows, bytes and transactions per connection and per chat message; not part of `make test`
bench-footprint: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/footprint.py $(BENCH_ARGS)

## bench-compare: fan-out, chat rate and idle connections side by side: Switchboard under Daphne and uvicorn, Node ws and bare ASGI on Daphne (../shared/wsbench); not part of `make test`
bench-compare: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/compare.py $(BENCH_ARGS)

## bench-alternate: fan-out before and after a change, taking turns (BENCH_ARGS="--baseline DIR"); medians; not part of `make test`
bench-alternate: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/alternate.py $(BENCH_ARGS)

## bench-adapters: fan-out through each seed's compatibility endpoint against /ws/, taking turns; medians, ratios to native; not part of `make test`
bench-adapters: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/adapters.py $(BENCH_ARGS)

## bench-soak: 10 minutes of connection churn (50/s) and chat: RSS, what is left behind, errors; not part of `make test`
bench-soak: $(VENV)/.installed-bench
	scripts/with-redis.sh $(PY) bench/soak.py $(BENCH_ARGS)

## bench-chat-page: the chat page in Chromium with a conversation of 10,000 messages: open, scroll back page by page, frames and long tasks; not part of `make test`
bench-chat-page: $(VENV)/.installed-bench
	scripts/ensure-browser.sh
	scripts/with-redis.sh $(PY) bench/chat_page.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test_db.sqlite3*
