"""The joint model's design matrix: which columns a post's arms switch on.

Columns are an intercept, one per (dimension, arm), one per (formula, hook) pair when the
interaction is on, and the audience covariate. A post has at most one 1 per dimension, so the
matrix is kept as the columns of its 1s (:class:`Layout`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Row:
    """One post as the joint model sees it."""

    arms: Mapping[str, str]
    value: float  # the count being modelled (followers or engagements)
    weight: float = 1.0  # discount x provisional share
    z: float = 0.0  # the audience covariate: log of the account's followers when posted, centred
    # the post's identity (its content id; None: unknown): a post's arms never change within one
    # design, so its columns are looked up once per design
    key: int | None = None


@dataclass(frozen=True, slots=True)
class Layout:
    """A 0/1 design matrix by the columns of its 1s: ``cols[i]`` lists row i's, padded with
    ``size`` (a column that does not exist). Every post has at most one 1 per dimension, so the
    products the Newton steps need are sums over a few columns per row instead of dense
    matrix products over all of them."""

    cols: np.ndarray  # (n, width) of column numbers, ``size`` for padding
    size: int
    # one continuous column (the audience covariate): its number and its values (None: none)
    z_col: int | None = None
    z: np.ndarray | None = None

    def eta(self, theta: np.ndarray) -> np.ndarray:
        """``X @ theta``."""
        out = np.append(theta, 0.0)[self.cols].sum(axis=1)
        if self.z is not None:
            out += theta[self.z_col] * self.z
        return out

    def _ones_t(self, r: np.ndarray) -> np.ndarray:
        """``X01.T @ r`` over the 0/1 columns only."""
        width = self.cols.shape[1]
        sums = np.bincount(self.cols.ravel(), np.repeat(r, width), minlength=self.size + 1)
        return sums[: self.size]

    def xt(self, r: np.ndarray) -> np.ndarray:
        """``X.T @ r``."""
        sums = self._ones_t(r)
        if self.z is not None:
            sums[self.z_col] += float(r @ self.z)
        return sums

    def gram(self, v: np.ndarray) -> np.ndarray:
        """``X.T @ diag(v) @ X``."""
        width = self.cols.shape[1]
        side = self.size + 1
        cells = (self.cols[:, :, None] * side + self.cols[:, None, :]).ravel()
        sums = np.bincount(cells, np.repeat(v, width * width), minlength=side * side)
        gram = sums.reshape(side, side)[: self.size, : self.size]
        if self.z is not None:
            cross = self._ones_t(v * self.z)
            cross[self.z_col] = float(v @ np.square(self.z))
            gram[self.z_col, :] = cross
            gram[:, self.z_col] = cross
        return gram

    def used_mask(self) -> np.ndarray:
        """Per column, whether some row has a non-zero in it."""
        mask: np.ndarray = np.bincount(self.cols.ravel(), minlength=self.size + 1)[:-1] > 0
        if self.z is not None and self.z_col is not None:
            mask[self.z_col] = bool(np.any(self.z != 0))
        return mask

    def used(self) -> int:
        """How many columns have a non-zero in some row."""
        return int(np.count_nonzero(self.used_mask()))

    def dense(self) -> np.ndarray:
        x = np.zeros((len(self.cols), self.size + 1))
        x[np.arange(len(self.cols))[:, None], self.cols] = 1.0
        if self.z is not None:
            x[:, self.z_col] = self.z
        return x[:, : self.size]


Pairs = tuple[str, str] | tuple[tuple[str, str], ...]


def pair_sets(pairs: Pairs | None) -> tuple[tuple[str, str], ...]:
    """The pairs of dimensions given interaction terms: ``None`` none, ``("formula", "hook")``
    one, ``(("content_type", "formula"), ...)`` several."""
    if not pairs:
        return ()
    if isinstance(pairs[0], str):
        first, second = pairs
        return ((str(first), str(second)),)
    return tuple((str(p[0]), str(p[1])) for p in pairs)


@dataclass(slots=True)
class Design:
    """Columns of the model: an intercept, one per (dimension, arm), one per pair of arms of
    each pair of dimensions in ``pairs`` (:func:`pair_sets`)."""

    catalogue: Mapping[str, Sequence[str]]
    pairs: Pairs | None = None
    covariate: bool = False  # a last column for the audience covariate (Row.z)
    index: dict[tuple[str, str], int] = field(default_factory=dict)
    # (first dimension, its arm, second dimension, its arm) -> column
    pair_index: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    size: int = 1
    z_col: int | None = None
    # a memo of pure functions of the catalogue, never state: a post's key -> its columns, and
    # the last few layouts built (their rows' keys and columns); a history only grows at its end,
    # so most of a new layout is a prefix of an earlier one
    _columns: dict[int, list[int]] = field(default_factory=dict, repr=False, compare=False)
    _recent: list[tuple[np.ndarray, np.ndarray]] = field(
        default_factory=list, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        col = 1
        for dimension, arms in self.catalogue.items():
            for arm in arms:
                self.index[(dimension, arm)] = col
                col += 1
        for first, second in pair_sets(self.pairs):
            for a in self.catalogue.get(first, ()):
                for b in self.catalogue.get(second, ()):
                    self.pair_index[(first, a, second, b)] = col
                    col += 1
        self.z_col = None
        if self.covariate:
            self.z_col = col
            col += 1
        self.size = col

    def labels(self) -> tuple[Hashable, ...]:
        """What each column is, in column order: ``("intercept",)``, ``("arm", dimension, arm)``,
        ``("pair", first dimension, its arm, second dimension, its arm)``, ``("covariate",)`` (a
        fold made in one design is
        placed in another by these, :mod:`learning.folded`)."""
        out: list[Hashable] = [("intercept",)] * self.size
        for (dimension, arm), col in self.index.items():
            out[col] = ("arm", dimension, arm)
        for key, col in self.pair_index.items():
            out[col] = ("pair", *key)
        if self.z_col is not None:
            out[self.z_col] = ("covariate",)
        return tuple(out)

    def columns(self, arms: Mapping[str, str]) -> list[int]:
        """The columns that are 1 for a post with these arms (the intercept included)."""
        cols = [0]
        for dimension, arm in arms.items():
            col = self.index.get((dimension, arm))
            if col is not None:
                cols.append(col)
        for first, second in pair_sets(self.pairs):
            key = (first, arms.get(first, ""), second, arms.get(second, ""))
            col = self.pair_index.get(key)
            if col is not None:
                cols.append(col)
        return cols

    def layout(
        self, rows: Sequence[Mapping[str, str]], keys: Sequence[int | None] | None = None
    ) -> Layout:
        """The design matrix of these posts' arms (row i: ``rows[i]``), as its 1s' columns.
        ``keys[i]`` identifies row i's post (None: unknown, its columns are looked up anew)."""
        # the intercept, a column per dimension, one per pair of dimensions
        width = 1 + len(self.catalogue) + max(len(pair_sets(self.pairs)), 1)
        cols = np.full((len(rows), width), self.size, dtype=np.intp)
        if keys is None:
            for i, arms in enumerate(rows):
                found = self.columns(arms)
                cols[i, : len(found)] = found
            return Layout(cols, self.size)
        ids = np.fromiter((-1 if k is None else k for k in keys), dtype=np.int64, count=len(rows))
        start = 0
        for old_ids, old_cols in self._recent:
            n = min(len(old_ids), len(ids))
            differ = np.flatnonzero((old_ids[:n] != ids[:n]) | (ids[:n] < 0))
            same = int(differ[0]) if len(differ) else n
            if same > start and old_cols.shape[1] == width:
                cols[:same] = old_cols[:same]
                start = same
        cache = self._columns
        if len(cache) > 4 * len(rows) + 1000:  # forget posts no longer asked about
            cache.clear()
        for i in range(start, len(rows)):
            key = keys[i]
            known = cache.get(key) if key is not None else None
            if known is None:
                known = self.columns(rows[i])
                if key is not None:
                    cache[key] = known
            cols[i, : len(known)] = known
        cols.flags.writeable = False  # kept for the next call: read-only
        self._recent = [(ids, cols), *self._recent[:2]]
        return Layout(cols, self.size)

    def rows_layout(self, rows: Sequence[Row]) -> Layout:
        """The design matrix of these rows: their arms' 1s and, with the covariate, their z."""
        keys = [r.key for r in rows]
        x = self.layout([r.arms for r in rows], None if all(k is None for k in keys) else keys)
        if self.z_col is None:
            return x
        return Layout(x.cols, x.size, self.z_col, np.array([r.z for r in rows], dtype=float))

    def is_pair(self) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for col in self.pair_index.values():
            mask[col] = True
        return mask
