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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError, ModelNotFoundError
from .features import (
    _CACHE_WORDS,
    FEATURE_VERSION,
    Analysis,
    FeatureSpace,
    rule_features,
    shape_features,
)
from .verdict import INTENTS

__all__ = ["LinearModel", "load", "save"]

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

    @property
    def temperature(self) -> float:
        return float(self.card.get("calibration", {}).get("temperature", 1.0))

    @property
    def threshold(self) -> float:
        return float(self.card.get("thresholds", {}).get("do_not_email", 0.5))

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

    def score(self, a: Analysis) -> tuple[np.ndarray, list[int], float]:
        """Probabilities of one analysis by the fast path, plus the word and bigram
        columns (for evidence) and the n-gram value they carry.

        The same numbers as ``proba(*space.vectorize(a))``: each distinct word's
        rows (its word and character n-gram features) are summed once and cached.
        """
        space = self.space
        idx = space.index
        W = self.W
        cache = self._word_vecs
        vecs = []
        ev_cols: list[int] = []
        n = 0
        prev: str | None = None
        for w in a.words:
            got = cache.get(w)
            if got is None:
                cols, count = space._word_indices(w)
                vec = W[list(cols)].sum(axis=0, dtype=np.float64) if cols else np.zeros(W.shape[1])
                j = idx.get("w=" + w, -1)
                got = (vec, count, j)
                if len(cache) > _CACHE_WORDS:
                    cache.clear()
                cache[w] = got
            vecs.append(got[0])
            n += got[1]
            if got[2] >= 0:
                ev_cols.append(got[2])
            if prev is not None:
                n += 1
                jb = idx.get("b=" + prev + " " + w)
                if jb is not None:
                    ev_cols.append(jb)
                    vecs.append(W[jb])
            prev = w
        z = self.b.astype(np.float64)
        val = 0.0
        if n:
            val = 1.0 / math.sqrt(n)
            z = z + np.add.reduce(vecs, dtype=np.float64) * val
        rcols = [j for j in map(idx.get, rule_features(a.hits) + shape_features(a) + list(a.context)) if j is not None]
        if rcols:
            z = z + W[rcols].sum(axis=0, dtype=np.float64)
        return self._softmax(z), ev_cols, val

    def __post_init__(self) -> None:
        self._word_vecs: dict[str, tuple[np.ndarray, int, int]] = {}


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
    return LinearModel(W, b, FeatureSpace(names), card, d)


def softmax_rows(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out

