# ssmlib: the two commands are `make book` and `make test` (README). Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
export SSMLIB_PROFILE ?= quick
export PYTHONUNBUFFERED := 1

.PHONY: book test lab venv clean sync browser-test vendor

# Create .venv if missing and install the pinned requirements (torch pinned in the same install,
# so pip takes the CPU wheel and never pulls CUDA packages), then ssmlib itself in editable mode.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

# Keep each notebooks/NN_name.ipynb equal to its NN_name.py pair (edit either, then `make sync`).
sync: venv
	$(BIN)/jupytext --sync notebooks/[0-9]*.py

# The book's two largest vendored scripts are tracked only as book/vendor-gz/<path>.gz (the tracked tree
# travels with every GPU call): unpack them into book/extra/vendor/ (git-ignored) when missing or stale,
# atomically, checking the sha256 recorded in book/extra/vendor/VERSIONS.txt. Standard library only.
vendor:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) book/vendor_gz.py

# Execute every notebook at the quick profile and build the HTML book into _build/html (-W).
book: venv vendor
	$(BIN)/python scripts/build_book.py

# Unit tests, then nbval over every notebook (--nbval-lax: a notebook fails when a cell raises; outputs are not
# compared, the notebooks are committed without outputs, so what a cell guards is an assert or a unit test).
test: venv vendor
	$(BIN)/python -m pytest tests -q
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

# The book as a reader sees it (scripts/browser_test.py): headless chromium opens every page of
# _build/html (images, widgets, math, no console error, nothing from the network), then JupyterLab on
# 127.0.0.1 runs notebooks/11_explorer.ipynb; screenshots in _build/screenshots/. Needs `make book`.
# Without chromium it prints one SKIPPED line; BROWSER_TEST_ARGS=--install apt-gets it (root, Debian).
browser-test: venv
	$(BIN)/python scripts/browser_test.py $(BROWSER_TEST_ARGS)

# JupyterLab on 127.0.0.1 with Jupyter's token kept (paired notebooks open as notebooks).
lab: venv
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

clean:
	rm -rf _build runs
