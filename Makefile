# mmlab: two commands do the whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SYNTH := data/synth/demo
DEMO_TRAIN := data/synth/demo-train
DEMO_PARAMS := data/params/demo.json
DEMO_RUN := data/runs/demo
DEMO_REPORT := reports/demo
# Hyperliquid's top maker tier pays a rebate; at the base 1.5 bps fee there is no edge at the
# touch of the demo market and the pipeline (rightly) hardly trades.
DEMO_MAKER_FEE_BPS := -0.2

.PHONY: env demo test test-unit test-notebooks bench clean

env: $(STAMP)

# The stamp is rebuilt when pyproject.toml changes, so a new dependency reaches an old .venv.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,live]'
	@touch $(STAMP)

# The strategy is calibrated on one synthetic market (seed 8) and backtested on another (seed 7).
demo: env
	$(BIN)/mmlab synth --minutes 60 --seed 8 --out $(DEMO_TRAIN)
	$(BIN)/mmlab calibrate --tape $(DEMO_TRAIN)/tape.parquet --maker-fee-bps $(DEMO_MAKER_FEE_BPS) --out $(DEMO_PARAMS)
	$(BIN)/mmlab synth --minutes 60 --seed 7 --out $(DEMO_SYNTH)
	$(BIN)/mmlab backtest --tape $(DEMO_SYNTH)/tape.parquet --config $(DEMO_PARAMS) --out $(DEMO_RUN) --maker-fee-bps $(DEMO_MAKER_FEE_BPS)
	$(BIN)/mmlab report --run $(DEMO_RUN) --out $(DEMO_REPORT)

test: env test-unit test-notebooks

test-unit: env
	$(BIN)/python -m pytest -p no:nbval -q tests --ignore=tests/notebooks

# A second pytest run: nbval (and papermill) make every pytest start slow.
test-notebooks: env
	$(BIN)/python -m pytest -q --nbval-lax notebooks tests/notebooks

bench: env
	@for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) data/synth data/runs data/params reports/demo .pytest_cache .hypothesis
