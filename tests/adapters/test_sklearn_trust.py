"""The refusal of a skops file's untrusted types says which types, and how to trust them only
when they are scikit-learn's own."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from guardrail.adapters.sklearn import check_trusted
from guardrail.core.errors import UnsafeModelError


def _skops_naming(path: Path, module: str, name: str) -> Path:
    """A skops file (a zip holding schema.json, written without skops) whose tree names ``module.name``."""
    node = {"__class__": name, "__module__": module, "__loader__": "TypeNode", "__id__": 2}
    keys = {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 4}
    schema = {
        "__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": {"hook": node},
        "key_types": {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "__id__": 3, "content": [keys]},
        "__id__": 1, "protocol": 2, "_skops_version": "0.16.0",
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return path


def test_a_scikit_learn_type_is_refused_with_the_line_that_trusts_it(tmp_path: Path) -> None:
    predictor = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    path = _skops_naming(tmp_path / "m.skops", *predictor.rsplit(".", 1))
    with pytest.raises(UnsafeModelError) as caught:
        check_trusted(path)
    assert caught.value.message.endswith(f"not trusted by default: {predictor}")
    assert f"`trusted_types: [{predictor}]`" in (caught.value.hint or "")
    assert check_trusted(path, trusted_types=[predictor]) == [predictor]


def test_a_foreign_type_is_refused_without_a_line_to_copy(tmp_path: Path) -> None:
    path = _skops_naming(tmp_path / "m.skops", "posix", "system")
    with pytest.raises(UnsafeModelError) as caught:
        check_trusted(path)
    assert caught.value.message.endswith("not trusted by default: posix.system")
    hint = caught.value.hint or ""
    assert "not scikit-learn's" in hint and "trusted_types: [" not in hint
