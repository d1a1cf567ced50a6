# Every target installs what it needs first: `make demo` and `make test` work on a
# fresh machine with only python3 (3.11) on the PATH.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.xsell-installed
SPARK_STAMP := $(VENV)/.xsell-spark-installed

export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export GX_ANALYTICS_ENABLED := false

.PHONY: setup chromium java demo test test-spark test-bi docs docs-site lint bench clean

setup: $(STAMP) chromium

# Headless Chromium for the report browser tests (they skip without it). Installed only
# when missing, as root, with apt; never fails setup.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing chromium for the report browser tests (apt-get)"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) || \
	    echo "chromium not installed: the report browser tests will skip"; \
	  else \
	    echo "chromium not found (needs root and apt): the report browser tests will skip"; \
	  fi; }

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

# The optional `spark` extra (dbt-spark, PySpark: about 480 MB), only for the spark target.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev,spark]"
	@touch $(SPARK_STAMP)

# Java 17 for Spark: installed only when missing, as root, with apt; test-spark fails
# without it.
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Java 17 for Spark (apt-get)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null 2>&1 && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >/dev/null 2>&1); \
	  fi; \
	  command -v java >/dev/null 2>&1 || { echo "Spark needs Java 17: install a JRE (e.g. openjdk-17-jre-headless)"; exit 1; }; }

demo: setup
	$(BIN)/xsell run

test: setup
	$(BIN)/pytest

# The same models on Apache Spark (local mode), compared row for row with DuckDB.
test-spark: $(SPARK_STAMP) java
	$(BIN)/pytest tests/spark -rP

# A real BI client: Apache Superset (its own venv, about 870 MB; 2-3 min to install the
# first time) serves two charts from the published file, checked against the marts, also
# while `xsell run` republishes. The tests run in .venv and start Superset from .venv-bi.
BI_VENV := .venv-bi
BI_STAMP := $(BI_VENV)/.xsell-bi-installed
$(BI_STAMP): tests/bi/requirements.in tests/bi/requirements.lock
	@test -x $(BI_VENV)/bin/python || $(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r tests/bi/requirements.in -c tests/bi/requirements.lock
	@touch $(BI_STAMP)

test-bi: setup $(BI_STAMP)
	XSELL_BI_VENV=$(BI_VENV) $(BIN)/pytest tests/bi -rP

docs: setup
	@test -n "$$(ls data/raw/transactions.* 2>/dev/null)" || $(BIN)/xsell generate
	$(BIN)/dbt docs generate
	@echo "Serve with: $(BIN)/dbt docs serve"

# The reference documentation (docs/, mkdocs.yml) as a static site in site/, built offline;
# --strict fails on a broken link or anchor. tests/python/test_docs.py checks that what the
# pages name (models, vars, commands, files) exists.
docs-site: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "Open site/index.html"

# sqlfluff's dbt templater compiles the project, and compiling reads the raw files' shape:
# a 7-day synthetic store in .lint/ (about 1 s) serves.
LINT := .lint
lint: setup
	$(BIN)/ruff check .
	@rm -rf $(LINT) && $(BIN)/xsell generate --out $(LINT)/raw --days 7 --stores 1 >/dev/null
	XSELL_RAW_DIR=$(LINT)/raw XSELL_BUILD_DB=$(LINT)/lint.duckdb DBT_TARGET_PATH=$(LINT)/target \
	  DBT_LOG_PATH=$(LINT)/logs $(BIN)/sqlfluff lint models analyses tests --processes 2

# Scale benchmark (not a test): `make bench SIZES=0.1M,1M` for a subset; BENCH_ARGS passes
# more options (e.g. --no-demo, --keep; see bench/bench_scale.py --help). 10M lines take
# about 10 minutes.
SIZES ?= 0.1M,1M,10M
bench: setup
	$(BIN)/python bench/bench_scale.py --sizes $(SIZES) $(BENCH_ARGS)

clean:
	rm -rf .lint target logs reports/out site warehouse/*.duckdb* warehouse/*.wal warehouse/export
