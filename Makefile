# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv (Python 3.11) and install the project into it when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
CORES ?= 2
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' > $(VENV)/pip.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/pip.log; exit 1; }
	$(PY) -c "import i2sb, torch, torchvision, snakemake, mlflow, cleanfid, lmdb"
	touch $(STAMP)

install: $(STAMP)

# The whole pipeline on the embedded demo (config/config.yaml): photos -> LMDB -> train -> sample
# -> evaluate -> MLflow -> tables, on CPU. Outputs in results/demo, MLflow in results/mlflow.db.
# After an interrupted run, scripts/stale_lock.py clears Snakemake's lock when no Snakemake runs here.
demo: $(STAMP)
	$(PY) scripts/stale_lock.py $(VENV)/bin/snakemake
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --cores $(CORES) --rerun-incomplete
	@echo "Done: tables in results/demo/tables/report.md; MLflow UI: $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///results/mlflow.db --host 127.0.0.1"
	@$(PY) -c "import json; print('then open the runs table:', json.load(open('results/demo/tracking/tracked.json'))['runs_page'])"
	@$(PY) -c "import json, i2sb.tables as t; print(t.degraded_line(json.load(open('results/demo/tables/tables.json'))))"

# Lint first (ruff check + format check, seconds): CI runs `make test`, so an unformatted or unlinted change fails CI.
test: lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf results .snakemake
