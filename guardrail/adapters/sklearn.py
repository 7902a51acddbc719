"""scikit-learn models saved with skops, loaded with only trusted types, without importing torch.

Importing ``skops.io`` lists scikit-learn's estimators (``sklearn.utils.all_estimators``, the
default trusted types), which imports every package under ``sklearn``, among them the
array-API wrappers of ``sklearn/externals/array_api_compat``: its ``torch`` wrapper imports
torch (about 3 s of CPU) when torch is installed. :func:`import_skops` keeps those wrappers
out while skops loads (see there why that is safe); a scikit-learn audit imports no torch.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.adapters.base import ModelSource, Predictions
from guardrail.adapters.safety import refuse_pickle
from guardrail.core.errors import MissingExtraError, ModelError, UnsafeModelError, first_line

if TYPE_CHECKING:
    import pandas as pd

    from guardrail.spec.models import SklearnModelSpec


class SklearnAdapter:
    """A fitted scikit-learn estimator (or pipeline) from a ``.skops`` file.

    Types outside skops' default trusted set are refused unless listed in ``trusted_types``.
    """

    kind = "sklearn"

    def __init__(self, estimator: Any, features: Sequence[str]) -> None:
        self.estimator = estimator
        self._features = tuple(features)

    @property
    def features(self) -> tuple[str, ...]:
        return self._features

    @classmethod
    def from_spec(cls, model: SklearnModelSpec, source: ModelSource) -> SklearnAdapter:
        """The spec's ``adapter: sklearn`` section: its ``.skops`` file, read with ``data.features``."""
        assert source.path is not None
        return cls.load(source.path, trusted_types=model.trusted_types, features=source.features)

    @classmethod
    def load(cls, path: Path, *, trusted_types: Sequence[str] = (), features: Sequence[str] | None = None) -> SklearnAdapter:
        untrusted = check_trusted(path, trusted_types)
        try:
            estimator = import_skops().load(path, trusted=list(untrusted))
        except Exception as exc:  # a file from another scikit-learn version fails in assorted ways
            raise ModelError(
                f"{path} could not be loaded ({type(exc).__name__}: {first_line(exc)})",
                hint="a skops file is read with the scikit-learn it was saved with in mind: save the model again "
                "with the scikit-learn installed here, or install the version it was saved with",
            ) from None
        if not hasattr(estimator, "predict"):
            raise ModelError(f"{path} holds a {type(estimator).__name__}, which has no predict()")
        expected = getattr(estimator, "feature_names_in_", None)
        if features is None:
            if expected is None:
                raise ModelError(
                    f"the model in {path} does not record its input columns",
                    hint="list them under `data.features` in the spec",
                )
            features = [str(name) for name in expected]
        elif expected is not None and list(map(str, expected)) != list(features):
            raise ModelError(
                f"data.features {list(features)} differ from the columns the model was fitted on {list(expected)}",
                hint="remove data.features to use the model's own list, or fix its order",
            )
        elif isinstance(width := getattr(estimator, "n_features_in_", None), int) and width != len(features):
            raise ModelError(
                f"the model in {path} was fitted on {width} input column(s), data.features lists {len(features)}",
                hint="list under data.features the model's input columns, in the order it was fitted on",
            )
        return cls(estimator, features)

    def predict(self, data: pd.DataFrame, positive_label: object) -> Predictions:
        import numpy as np

        missing = [f for f in self._features if f not in data.columns]
        if missing:
            raise missing_columns(missing)
        inputs = data.loc[:, list(self._features)]
        classes = [c.item() if hasattr(c, "item") else c for c in getattr(self.estimator, "classes_", [])]
        try:
            with warnings.catch_warnings():
                # "X has feature names, but … was fitted without feature names": the spec's
                # data.features already fixes the columns and their order.
                warnings.filterwarnings("ignore", message=".*feature names.*", category=UserWarning)
                labels = np.asarray(self.estimator.predict(inputs))
                scores = None
                if hasattr(self.estimator, "predict_proba") and positive_label in classes and len(classes) == 2:
                    scores = np.asarray(self.estimator.predict_proba(inputs))[:, classes.index(positive_label)]
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelError(
                f"the model could not predict on the data: {type(exc).__name__}: {exc}",
                hint="check that the data has the same columns and types as the training data",
            ) from None
        if len(labels) != len(data):
            raise ModelError(f"the model returned {len(labels)} predictions for {len(data)} rows")
        return Predictions(labels=labels, scores=scores, classes=tuple(classes))


def missing_columns(missing: Sequence[str], *, where: str | None = None) -> ModelError:
    """The error for a model whose input columns are not all in the data."""
    return ModelError(
        f"the model needs column(s) {', '.join(map(repr, missing))}, which the data does not have",
        where=where,
        hint="audit the model on data with the columns it was trained on",
    )


def check_trusted(path: Path, trusted_types: Sequence[str] = ()) -> list[str]:
    """The types in the skops file ``path`` that skops does not trust by default, once each is
    trusted by ``trusted_types`` (the spec's ``model.trusted_types``); reads the file's schema,
    runs none of its code.

    Raises
    ------
    UnsafeModelError
        If ``path`` is a pickle, or holds a type neither skops nor ``trusted_types`` trusts
        (the message names each such type and how to trust it).
    ModelError
        If ``path`` is not a skops file.
    MissingExtraError
        If skops is not installed.
    """
    refuse_pickle(path)
    sio = import_skops()
    try:
        untrusted: list[str] = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises assorted errors for non-skops files
        raise ModelError(
            f"{path} is not a readable skops file ({type(exc).__name__}: {exc})",
            hint="save scikit-learn models with `skops.io.dump(model, 'model.skops')`",
        ) from None
    refused = sorted(set(untrusted) - set(trusted_types))
    if refused:
        if all(name.partition(".")[0] in _LIBRARIES for name in refused):
            hint = (
                "loading a type runs its code; these are scikit-learn's (or numpy's, scipy's) own: if you trust the "
                f"file, list them under `model.trusted_types` in the spec: `trusted_types: [{', '.join(refused)}]`"
            )
        else:
            hint = (
                "loading a type runs its code, and these are not scikit-learn's: a model file that needs them can run "
                "anything; list them under `model.trusted_types` in the spec only if you wrote that code"
            )
        raise UnsafeModelError(
            f"refusing to load {path}: it contains types that are not trusted by default: {', '.join(refused)}", hint=hint
        )
    return untrusted


_LIBRARIES = frozenset({"sklearn", "numpy", "scipy"})
"""Where the types skops does not trust by default but a scikit-learn model may hold come from
(e.g. HistGradientBoosting's TreePredictor): the refusal shows how to trust them."""


_ARRAY_BACKENDS = tuple(f"sklearn.externals.array_api_compat.{name}" for name in ("torch", "cupy", "dask"))
"""scikit-learn's wrappers of optional array libraries, each of which imports its library."""


class _SkipArrayBackends(importlib.abc.MetaPathFinder):
    """Refuses to find :data:`_ARRAY_BACKENDS` (an ``ImportError``) in the thread that made it,
    and nothing else: another thread's imports are never touched."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if threading.get_ident() != self._thread:
            return None
        if fullname in _ARRAY_BACKENDS or fullname.startswith(tuple(f"{name}." for name in _ARRAY_BACKENDS)):
            raise ModuleNotFoundError(f"{fullname} is not imported while skops lists scikit-learn's estimators", name=fullname)
        return None


_IMPORTING = threading.Lock()
"""Serialises :func:`import_skops` (the finder it installs is process-wide)."""


def import_skops() -> Any:
    """``skops.io``, imported without torch (nor cupy, nor dask).

    While skops loads, the array-API wrappers of optional libraries under
    ``sklearn.externals.array_api_compat`` cannot be imported. That is safe, and no patch of
    either library: skops imports them only through ``sklearn.utils.all_estimators``, which
    walks every package with :func:`pkgutil.walk_packages`, whose documented behaviour is to
    ignore a package's ``ImportError``; ``all_estimators`` then leaves ``externals`` out of
    its list anyway. scikit-learn itself imports a wrapper only when its array-API dispatch
    meets an array of that library, and it can do so afterwards: nothing is remembered of the
    refusal. When torch is already imported, nothing is refused (it costs nothing more).

    Thread-safe: calls are serialised, and a module another thread is still importing is never
    returned half-built (the ``import`` statement waits for it).

    Raises
    ------
    MissingExtraError
        If skops is not installed.
    """
    with _IMPORTING:
        skip = None if "torch" in sys.modules or "skops.io" in sys.modules else _SkipArrayBackends()
        if skip is not None:
            sys.meta_path.insert(0, skip)
        try:
            import skops.io as sio
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != "skops":
                raise
            raise MissingExtraError("skops", "fairness") from None
        finally:
            if skip is not None:
                sys.meta_path.remove(skip)
        return sio
