"""Argument checks shared by the audits that judge per-example scores against known membership."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def scores_and_flags(
    scores: npt.ArrayLike, flags: npt.ArrayLike, *, flags_name: str, what: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """``scores`` as floats and ``flags`` as booleans, 1-D of one length, every score finite.

    ``flags_name`` names the flags argument and ``what`` the scores in the error messages.

    >>> scores_and_flags([0.5, 1.0], [1, 0], flags_name="is_member", what="attack scores")[1]
    array([ True, False])
    """
    score = np.asarray(scores, dtype=float)
    flag = np.asarray(flags, dtype=bool)
    if score.ndim != 1 or flag.shape != score.shape:
        raise ValueError(
            f"scores and {flags_name} must be 1-D of the same length, got {score.shape} and {flag.shape}"
        )
    if not np.all(np.isfinite(score)):
        raise ValueError(f"{what} must be finite")
    return score, flag
