"""One 64-bit hash per row, the same for equal rows in any frame: how the data audit finds
duplicate rows, rows leaked from the training data and identical rows with conflicting labels.

Equal means what :meth:`pandas.DataFrame.duplicated` means, across frames too: a number is
equal to the same number whatever its dtype (an integer column read from one CSV file and the
same column read as floats from another, because it has a missing value there), ``-0.0`` to
``0.0``, a category to the same value in a column of another dtype, and every missing value
(NaN, None, NaT, pd.NA, a missing category) to every other. Integers beyond ``±2⁵³``, which
float64 would round together, keep their exact value. Two distinct rows share a hash with
probability about ``2⁻⁶⁴`` per pair: about ``rows² / 2⁶⁵`` for a whole frame (3 × 10⁻⁶ at ten
million rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

HASH_CHUNK_ROWS = 1 << 16
"""Rows hashed at a time: every step works in the processor's cache, and no copy of the columns is made."""

_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_NAN = np.uint64(0x7FF8000000000000)


def row_hashes(data: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A ``uint64`` hash of each row's values in ``columns`` (see the module docstring).

    Chunk by chunk, each column's 64-bit words (:func:`column_words`) are folded into the
    row's state by ``h = mix(h ^ word)``, with ``mix`` a bijection (an odd multiply and a
    xor-shift), and the state goes through splitmix64's finaliser at the end."""
    rows = len(data)
    out = np.empty(rows, dtype=np.uint64)
    words = [column_words(data[c]) for c in columns]
    scratch = np.empty(min(rows, HASH_CHUNK_ROWS), dtype=np.uint64)
    for start in range(0, rows, HASH_CHUNK_ROWS):
        part = slice(start, min(rows, start + HASH_CHUNK_ROWS))
        state = out[part]
        state[:] = 0x345678
        shifted = scratch[: part.stop - part.start]
        for word in words:
            state ^= word(part)
            state *= _MIX[0]
            np.right_shift(state, np.uint64(29), out=shifted)
            state ^= shifted
    return _finalise(out)


def column_words(column: pd.Series) -> Callable[[slice], np.ndarray]:
    """``rows → words``: one 64-bit word per value of ``column`` in those rows, equal for equal
    values in any column: a number (boolean, integer or float) as its float64 bit pattern
    (``-0.0`` as ``0.0``), an integer that float64 cannot hold exactly (beyond ``±2⁵³``) by a
    scramble of its exact value, a category as the word of its value, any other value by
    :func:`pandas.util.hash_pandas_object`; every missing value (NaN, None, NaT, pd.NA, a
    missing category) is one word, whatever the dtype."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = pd.Series(column.cat.categories)
        words = np.append(column_words(categories)(slice(0, len(categories))), _NAN)  # code -1 (missing) → the last
        codes = column.cat.codes.to_numpy()
        return lambda part: words[codes[part]]
    if pd.api.types.is_integer_dtype(dtype):
        return _integer_words(column)
    if isinstance(dtype, np.dtype) and dtype.kind in "bf" or pd.api.types.is_numeric_dtype(dtype):
        return _float_words(column.to_numpy(dtype=np.float64, na_value=np.nan))
    missing = np.asarray(column.isna())

    def other(part: slice) -> np.ndarray:
        words: np.ndarray = pd.util.hash_pandas_object(column.iloc[part], index=False).to_numpy(copy=True)
        np.putmask(words, missing[part], _NAN)
        return words

    return other


def _float_words(values: np.ndarray) -> Callable[[slice], np.ndarray]:
    """Words of float64 values: their bit patterns, ``-0.0`` as ``0.0``, NaN as :data:`_NAN`."""

    def floats(part: slice) -> np.ndarray:
        chunk = values[part]
        bits: np.ndarray = np.add(chunk, 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
        np.putmask(bits, np.isnan(chunk), _NAN)
        return bits

    return floats


_EXACT = 2**53
"""Integers up to this size are exactly float64 numbers: they hash as the equal float."""
_INT_SALT, _UINT_SALT = np.uint64(0xD6E8FEB86659FD93), np.uint64(0xA0761D6478BD642F)


def _integer_words(column: pd.Series) -> Callable[[slice], np.ndarray]:
    """Words of an integer column (numpy or nullable): the float word of each value that float64
    holds exactly (so ``3`` equals ``3.0`` in another frame), and for the others (beyond ``±2⁵³``,
    where ``2⁵³ + 1`` and ``2⁵³`` are the same float) a splitmix64 scramble of the exact 64-bit
    value, salted apart for unsigned values ``≥ 2⁶³`` (whose bits are a negative int64's)."""
    unsigned = pd.api.types.is_unsigned_integer_dtype(column.dtype)
    ints = column.to_numpy(dtype=np.uint64 if unsigned else np.int64, na_value=0)
    missing = np.asarray(column.isna()) if column.hasnans else None
    floats = ints.astype(np.float64)
    if missing is not None:
        floats[missing] = np.nan
    as_floats = _float_words(floats)
    if not len(ints) or (int(ints.max()) <= _EXACT and (unsigned or int(ints.min()) >= -_EXACT)):
        return as_floats  # the usual case: every value is an exact float

    def words(part: slice) -> np.ndarray:
        out = as_floats(part)
        chunk, approx = ints[part], floats[part]
        with np.errstate(invalid="ignore", over="ignore"):
            limit = 2.0**64 if unsigned else 2.0**63
            back = np.where((approx < limit) & (approx >= -limit), approx, 0.0).astype(ints.dtype)
        inexact = back != chunk
        if missing is not None:
            inexact &= ~missing[part]
        if inexact.any():
            bits = chunk[inexact].view(np.uint64)
            salt = np.where(bits >= np.uint64(1 << 63), _UINT_SALT, _INT_SALT) if unsigned else _INT_SALT
            out[inexact] = _scramble(bits ^ salt)
        return out

    return words


def _scramble(bits: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, a bijection of 64-bit words."""
    return _finalise(bits.copy())


def _finalise(out: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser applied to ``out`` in place (and returned)."""
    out ^= out >> np.uint64(30)
    out *= _MIX[1]
    out ^= out >> np.uint64(27)
    out *= _MIX[2]
    out ^= out >> np.uint64(31)
    return out
