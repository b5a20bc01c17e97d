"""The linear model: plain weights, a dot product and a softmax.

Files of a model directory (all written by :func:`save`, read by :func:`load`):

``weights.npz``      ``W`` (n_features x 6, float32) and ``b`` (6,), read with
                     ``allow_pickle=False``.
``features.json``    feature names in column order and the feature version.
``model_card.json``  thresholds, temperature, data hash, versions, metrics and
                     the SHA-256 of the two files above, checked before use.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._text import gc_paused
from .errors import ModelFileError, ModelNotFoundError
from .features import (
    _CACHE_WORDS,
    _MAX_TOKENS,
    FEATURE_VERSION,
    Analysis,
    FeatureSpace,
    rule_features,
    shape_features,
)
from .verdict import INTENTS

__all__ = ["LinearModel", "load", "save"]

assert _CACHE_WORDS > 2 * _MAX_TOKENS  # see LinearModel._gather
_FILES = ("weights.npz", "features.json", "model_card.json")
_DNE = 0  # INTENTS[0] is do_not_email


@dataclass
class LinearModel:
    """Weights, feature space and decision settings of one trained model."""

    W: np.ndarray
    b: np.ndarray
    space: FeatureSpace
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    # scoring caches (see score): word -> (cache row, n-gram count, word column)
    _cache: tuple[dict[str, tuple[int, int, int]], np.ndarray] = field(init=False, repr=False)
    _cache_lock: threading.Lock = field(init=False, repr=False)
    _columns: dict[int, np.ndarray] = field(init=False, repr=False)
    _bigrams: dict[str, dict[str, int]] = field(init=False, repr=False)

    @property
    def temperature(self) -> float:
        return float(self.card.get("calibration", {}).get("temperature", 1.0))

    @property
    def threshold(self) -> float:
        return float(self.card.get("thresholds", {}).get("do_not_email", 0.5))

    @property
    def threshold_without_rule(self) -> float:
        """The do-not-email threshold for replies without a live opt-out rule hit."""
        t = self.card.get("thresholds", {})
        return float(t.get("do_not_email_without_rule", t.get("do_not_email", 0.5)))

    @property
    def review_band(self) -> tuple[float, float]:
        band = self.card.get("thresholds", {}).get("needs_review", [0.2, 0.5])
        return float(band[0]), float(band[1])

    @property
    def version(self) -> str:
        return str(self.card.get("model_version", "unversioned"))

    def logits(self, cols: list[int], vals: list[float]) -> np.ndarray:
        """``b + x @ W`` for one sparse row given as column indices and values."""
        if not cols:
            return self.b.astype(np.float64)
        rows = self.W[cols]
        return self.b + np.asarray(vals, dtype=np.float32) @ rows

    def proba(self, cols: list[int], vals: list[float]) -> np.ndarray:
        return self._softmax(self.logits(cols, vals).astype(np.float64))

    def _softmax(self, z: np.ndarray) -> np.ndarray:
        z = z / self.temperature
        z -= z.max()
        e = np.exp(z)
        out: np.ndarray = e / e.sum()
        return out

    def score(self, a: Analysis) -> tuple[list[float], list[tuple[int, int, int]], float]:
        """Probabilities of one analysis by the fast path, the word and bigram features
        present (column, first word, last word: for evidence) and the n-gram value.

        The same numbers as ``proba(*space.vectorize(a))``: each distinct word's
        rows (its word and character n-gram features) are summed once into a row
        of a cache matrix, so a reply costs two gathers and a sum.
        """
        idx = self.space.index
        word_rows, big_cols, ev, n, C = self._gather(a.words)
        z = self.b.astype(np.float64)
        val = 0.0
        if n:
            val = 1.0 / math.sqrt(n)
            acc = C[word_rows].sum(axis=0)
            if big_cols:
                acc += self.W[big_cols].sum(axis=0, dtype=np.float64)
            z = z + acc * val
        rcols = [j for j in map(idx.get, rule_features(a.hits) + shape_features(a) + list(a.context)) if j is not None]
        if rcols:
            z = z + self.W[rcols].sum(axis=0, dtype=np.float64)
        t = self.temperature
        zs = [v / t for v in z.tolist()]
        top = max(zs)
        e = [math.exp(v - top) for v in zs]
        total = sum(e)
        return [v / total for v in e], ev, val

    def _gather(self, words: tuple[str, ...]) -> tuple[list[int], list[int], list[tuple[int, int, int]], int, np.ndarray]:
        """Cache rows of the words, bigram columns, evidence candidates, the n-gram count
        and the cache matrix the rows index into.

        A new word may fill the cache, which then starts a fresh matrix: rows gathered
        before that point into the old one, so the reply is gathered again (at most
        once: a reply's words, at most ``_MAX_TOKENS``, fit many times in a fresh cache).
        """
        bigrams = self._bigrams
        while True:
            rows, C = self._cache
            word_rows: list[int] = []
            big_cols: list[int] = []
            ev: list[tuple[int, int, int]] = []
            n = 0
            prev: str | None = None
            swapped = False
            for i, w in enumerate(words):
                got = rows.get(w)
                if got is None:
                    got = self._add_word(w)
                    rows, C2 = self._cache
                    swapped = swapped or C2 is not C
                    C = C2
                word_rows.append(got[0])
                n += got[1]
                if got[2] >= 0:
                    ev.append((got[2], i, i))
                if prev is not None:
                    n += 1
                    nxt = bigrams.get(prev)
                    if nxt is not None:
                        jb = nxt.get(w)
                        if jb is not None:
                            big_cols.append(jb)
                            ev.append((jb, i - 1, i))
                prev = w
            if not swapped:
                return word_rows, big_cols, ev, n, C

    def intent_weights(self, k: int) -> np.ndarray:
        """Column ``k`` of ``W`` as a contiguous vector (cached)."""
        got = self._columns.get(k)
        if got is None:
            got = self._columns[k] = np.ascontiguousarray(self.W[:, k])
        return got

    def _add_word(self, w: str) -> tuple[int, int, int]:
        """Sum a new word's rows into the cache matrix (a fresh matrix when full: a
        thread still reading the old one keeps consistent numbers)."""
        with self._cache_lock:
            rows, C = self._cache
            got = rows.get(w)
            if got is not None:
                return got
            if len(rows) >= len(C):
                rows, C = {}, np.zeros_like(C)
            cols, count = self.space._word_indices(w)
            r = len(rows)
            if cols:
                C[r] = self.W[list(cols)].sum(axis=0, dtype=np.float64)
            got = (r, count, self.space.index.get("w=" + w, -1))
            rows[w] = got
            self._cache = (rows, C)
            return got

    def __post_init__(self) -> None:
        self._cache = ({}, np.zeros((_CACHE_WORDS, self.W.shape[1]), dtype=np.float64))
        self._cache_lock = threading.Lock()
        self._columns = {}
        # bigram columns as first word -> second word -> column: no string building per pair
        self._bigrams = {}
        for name, j in self.space.index.items():
            if name.startswith("b="):
                first, _, second = name[2:].partition(" ")
                self._bigrams.setdefault(first, {})[second] = j


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(model: LinearModel, directory: str | Path) -> Path:
    """Write a model directory (weights, features, card with file hashes)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(d / "weights.npz", W=model.W.astype(np.float32), b=model.b.astype(np.float32))
    with open(d / "features.json", "w", encoding="utf-8") as fh:
        json.dump(
            {"feature_version": FEATURE_VERSION, "intents": [i.value for i in INTENTS], "names": model.space.names},
            fh,
            ensure_ascii=False,
            separators=(",", ":"),
        )
    card = dict(model.card)
    card["files"] = {name: _sha256(d / name) for name in _FILES[:2]}
    with open(d / "model_card.json", "w", encoding="utf-8") as fh:
        json.dump(card, fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.write("\n")
    model.card = card
    model.path = d
    return d


def load(directory: str | Path) -> LinearModel:
    """Load a model directory without unpickling anything.

    Raises
    ------
    ModelNotFoundError
        The directory or one of its files is missing.
    ModelFileError
        A file is corrupt, fails its SHA-256 check or has an unknown format.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ModelNotFoundError(f"model directory {str(d)!r} does not exist; train one with "
                                 "`replyguard train DATA -o DIR` or omit the path to use the packaged model")
    for name in _FILES:
        if not (d / name).is_file():
            raise ModelNotFoundError(f"model file {str(d / name)!r} is missing; the model directory "
                                     f"must hold {', '.join(_FILES)}")
    try:
        card = json.loads((d / "model_card.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{str(d / 'model_card.json')!r} is not valid JSON: {exc}") from None
    files = card.get("files", {}) if isinstance(card, dict) else {}
    for name in _FILES[:2]:
        want = files.get(name)
        if not want:
            raise ModelFileError(f"{str(d / 'model_card.json')!r} lists no SHA-256 for {name}")
        got = _sha256(d / name)
        if got != want:
            raise ModelFileError(
                f"{str(d / name)!r} does not match the SHA-256 in its model card "
                f"(expected {want[:12]}..., got {got[:12]}...): the file is corrupt or was changed; "
                "retrain or reinstall the model"
            )
    try:
        meta = json.loads((d / "features.json").read_text(encoding="utf-8"))
        with np.load(d / "weights.npz", allow_pickle=False) as npz:
            W = np.ascontiguousarray(npz["W"], dtype=np.float32)
            b = np.asarray(npz["b"], dtype=np.float32)
    except Exception as exc:
        raise ModelFileError(f"cannot read model files in {str(d)!r}: {exc}") from None
    if meta.get("feature_version") != FEATURE_VERSION:
        raise ModelFileError(
            f"{str(d / 'features.json')!r} has feature version {meta.get('feature_version')!r}; "
            f"this replyguard computes {FEATURE_VERSION!r}: retrain the model"
        )
    if meta.get("intents") != [i.value for i in INTENTS]:
        raise ModelFileError(f"{str(d / 'features.json')!r} lists intents {meta.get('intents')!r}")
    names = meta.get("names")
    if not isinstance(names, list) or W.shape != (len(names), len(INTENTS)) or b.shape != (len(INTENTS),):
        raise ModelFileError(f"weights in {str(d)!r} do not fit its feature list")
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        raise ModelFileError(f"weights in {str(d)!r} hold NaN or infinite values")
    # (the feature index and bigram table are ~120,000 objects that live on: no collections
    # walking them, and whatever else is alive, while they are built)
    with gc_paused():
        return LinearModel(W, b, FeatureSpace(names), card, d)


def softmax_rows(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out

