# Two commands matter: `make run` and `make test`. Both build the environment from
# the lock file first, with nothing but python3 and make on the machine.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
UV_VERSION := 0.13.8
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run loadgen test fuzz lint typecheck bench env clean codex claude-code config-reference

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --quiet
	@touch $@

env: $(VENV)/.synced

# Codex CLI, for the test that runs it against the gateway (tests/test_codex_cli.py);
# npm keeps the package in its cache, so a clean clone installs it again offline
CODEX_VERSION := 0.171.0
CODEX := $(TOOLS)/codex/node_modules/.bin/codex
$(CODEX):
	npm install --prefix $(TOOLS)/codex --no-audit --no-fund --silent @openai/codex@$(CODEX_VERSION)

codex: $(CODEX)  ## install Codex CLI into .tools/ (needs node and npm)

# Claude Code, for the test that runs it against the gateway (tests/test_claude_code.py)
CLAUDE_CODE_VERSION := 2.1.197
CLAUDE_CODE := $(TOOLS)/claude-code/node_modules/.bin/claude
$(CLAUDE_CODE):
	npm install --prefix $(TOOLS)/claude-code --no-audit --no-fund --silent \
		@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

claude-code: $(CLAUDE_CODE)  ## install Claude Code into .tools/ (needs node and npm)

run: env  ## serve the embedded demo config on http://127.0.0.1:8080
	$(VENV)/bin/switchboard serve $(if $(CONFIG),--config $(CONFIG)) --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),8080)

loadgen: env  ## demo traffic against `make run`, with a live view of where it is routed
	$(VENV)/bin/switchboard loadgen --url http://$(or $(HOST),127.0.0.1):$(or $(PORT),8080) $(ARGS)

test: env  ## everything CI runs: lint, types, then the test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

fuzz: env  ## 10,000 generated bad inputs per group: chat, admin keys, usage (not in make test)
	SWITCHBOARD_FUZZ_EXAMPLES=10000 $(VENV)/bin/pytest -q -m fuzz tests/test_fuzz.py --timeout 3600

.PHONY: test-container
test-container: env  ## build deploy/Dockerfile and run two replicas of it with podman (minutes)
	$(VENV)/bin/pytest -q -m container --timeout 3600

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy

config-reference: env  ## regenerate docs/config-reference.md from the config's Structs
	$(VENV)/bin/python -m gateway.config_reference docs/config-reference.md

bench: env  ## loopback benchmark: the gateway against a minimal pass-through (the floor), ~6 min
	bash bench/run.sh

.PHONY: bench-guard bench-baseline
bench-guard: env  ## short benchmark; fails when a figure falls below bench/baseline.json (~2 min)
	bash bench/run.sh guard.py $(ARGS)

bench-baseline: env  ## rewrite bench/baseline.json on purpose (docs/performance.md), ~4 min
	bash bench/run.sh guard.py --update --rounds 5 $(ARGS)

.PHONY: screenshots
screenshots: env  ## docs/img/: the status page and the dashboards under real traffic (chromium, prometheus; ~3 min)
	$(VENV)/bin/python -m tests.screenshots docs/img

.PHONY: bench-endpoints
bench-endpoints: env  ## what the gateway adds to each endpoint (responses, messages, embeddings, completions) beside chat (~8 min)
	timeout --foreground --kill-after=15 1800 $(VENV)/bin/python bench/endpoints.py

.PHONY: bench-endpoints-instructions
bench-endpoints-instructions: env  ## each endpoint's CPU instructions per request beside chat's, under callgrind (~40 min)
	$(VENV)/bin/python bench/endpoints_callgrind.py

.PHONY: bench-capacity
bench-capacity: env  ## req/s per worker at 1 and 2 workers, and their cost to Redis (~2 min)
	$(VENV)/bin/python bench/capacity.py

.PHONY: bench-instructions bench-soak bench-allocations
bench-instructions: env  ## instructions per request under callgrind, floor vs gateway (A/B on a busy machine; ARGS="--before PATH")
	$(VENV)/bin/python bench/instructions.py $(ARGS)

bench-soak: env  ## RSS over 100,000 requests per mode, streamed and not (bounded soak, ~10 min)
	$(VENV)/bin/python bench/soak.py $(ARGS)

bench-allocations: env  ## tracemalloc: memory a request retains and allocates (in-process, ~5 min)
	$(VENV)/bin/python bench/allocations.py $(ARGS)

.PHONY: bench-routing
bench-routing: env  ## microseconds per routing decision, 3 to 300 deployments (~10 s)
	$(VENV)/bin/python bench/routing_decision.py $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
