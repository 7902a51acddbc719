"""A scikit-learn audit never imports torch (importing skops would, through scikit-learn's
array-API wrappers), and its numbers are still right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adapters.sklearn_folder import SklearnFolder, build, probe


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> SklearnFolder:
    return build(tmp_path_factory.mktemp("sklearn-audit"))


def test_a_fairness_audit_of_a_sklearn_model_imports_no_torch_and_matches_fairlearn(folder: SklearnFolder) -> None:
    from fairlearn.metrics import demographic_parity_ratio

    spec = folder.spec()
    done = probe(["audit", str(spec), "--format", "json", "--quiet"], folder.root)
    assert done.code == 0, done.stderr
    assert done.torch == []
    record = json.loads((folder.root / "out" / "run.json").read_text())
    ratio = next(
        m for r in record["results"] for m in r["metrics"] if m["key"] == "fairness.demographic_parity_ratio" and m["scope"] == "sex"
    )
    expected = demographic_parity_ratio(folder.data["income_over_50k"], folder.predictions, sensitive_features=folder.data["sex"])
    assert ratio["value"] == pytest.approx(expected, abs=1e-12)
    assert record["verdict"]["outcomes"][0]["status"] == "pass"


IMPORT_SKOPS = """
import sys
from guardrail.adapters.sklearn import _SkipArrayBackends, import_skops
sio = import_skops()
assert "torch" not in sys.modules, "skops brought torch"
assert not any(isinstance(f, _SkipArrayBackends) for f in sys.meta_path), "the refusal outlived the import"
assert import_skops() is sio
import sklearn.externals.array_api_compat.torch  # scikit-learn can still load the wrapper when it needs it
assert "torch" in sys.modules
"""


@pytest.mark.slow
def test_import_skops_refuses_the_array_wrappers_only_while_skops_loads() -> None:
    """Slow: the last step imports torch."""
    done = subprocess.run([sys.executable, "-c", IMPORT_SKOPS], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_import_skops_without_skops_names_the_extra(tmp_path: Path) -> None:
    blocker = "import sys; sys.modules['skops'] = None\n"  # what Python does for an uninstalled package
    script = blocker + "from guardrail.adapters.sklearn import import_skops\nimport_skops()\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert "MissingExtraError" in done.stderr and "guardrail[fairness]" in done.stderr


CONCURRENT_IMPORTS = """
import sys, threading
from guardrail.adapters.sklearn import import_skops
got = []
def load():
    got.append(import_skops())
threads = [threading.Thread(target=load) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
# every thread has the whole module (not one half-built by another thread), and no finder is left behind
assert len(got) == 4 and all(hasattr(m, "load") and hasattr(m, "get_untrusted_types") for m in got), got
assert not any(type(f).__name__ == "_SkipArrayBackends" for f in sys.meta_path)
print("torch" in sys.modules)
"""


def test_threads_importing_skops_at_once_each_get_the_whole_module() -> None:
    done = subprocess.run([sys.executable, "-c", CONCURRENT_IMPORTS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_skops_file_that_fails_to_load_is_a_model_error_not_an_internal_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file saved by another scikit-learn version fails inside skops.io.load in assorted ways."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from guardrail.adapters.sklearn import SklearnAdapter
    from guardrail.core.errors import ModelError

    path = tmp_path / "model.skops"
    sio.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)

    def fail(*args: object, **kwargs: object) -> None:
        raise AttributeError("Can't get attribute '_RemovedInThisVersion' on <module 'sklearn.linear_model._logistic'>")

    monkeypatch.setattr(sio, "load", fail)
    with pytest.raises(ModelError, match=r"could not be loaded \(AttributeError: Can't get attribute"):
        SklearnAdapter.load(path)
