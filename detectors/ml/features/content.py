"""Content per request: what the path, query, body, method and user agent of one request look like.

Vectorized per batch: the texts are joined into one buffer; byte histograms give lengths, character-class
ratios and entropy; one regular-expression pass counts encoded and special sequences. ``fit`` learns what is
usual (method, user-agent and parameter-name frequencies), so "unusual" means unusual for this platform, not a
fixed list. Reads ``url.path``, ``url.query``, ``http.request.body.content``, ``http.request.method`` and
``user_agent.original``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from detectors.ml.features.columns import _get

Matrix = npt.NDArray[np.float64]

FIELDS_READ: Final = ("url.path", "url.query", "http.request.body.content", "http.request.method",
                      "user_agent.original")  # fmt: skip
_SEQUENCES: Final = {
    "encoded": r"%[0-9a-fA-F]{2}",
    "double_encoded": r"%25[0-9a-fA-F]{2}",
    "escapes": r"\\[xu][0-9a-fA-F]{2}|&#x?[0-9a-fA-F]+;",
    "traversal": r"\.\.[/\\]|\.\.%2[fF]|%2[eE]%2[eE]|\.\.\.\.//",
    "quotes": r"['\"`]|%2[27]|%60",
    "angle": r"[<>]|%3[cCeE]",
    "shell": r"[;|]|\$\(|&&|%7[cC]|%3[bB]",
    "sql": r"\b(?:union|select|sleep|benchmark|insert|drop|or\s+\d+=\d+|and\s+\d+=\d+)\b|--|/\*|#$",
    "script": r"<script|javascript:|\bon[a-z]{3,12}\s*=|alert\(|document\.|eval\(",
    "system": r"etc/(?:passwd|shadow|hosts)|/bin/|/proc/|win\.ini|boot\.ini|cmd\.exe|\b(?:wget|curl|nc|bash|sh)\s",
    "null_byte": r"%00|\\0",
}
_PATTERN: Final = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in _SEQUENCES.items()), re.IGNORECASE)
_NAMES: Final = list(_SEQUENCES)
FEATURES: Final = (
    "path_length", "query_length", "body_length", "path_segments", "max_segment_length", "params",
    "unknown_params", "max_param_length", "body_keys", "letters_ratio", "digits_ratio", "upper_ratio",
    "special_ratio", "space_ratio", "non_ascii_ratio", "entropy", "body_entropy", *(f"seq_{n}" for n in _NAMES),
    "method_rarity", "user_agent_rarity", "user_agent_length",
)  # fmt: skip
_E: Final[Mapping[str, Any]] = {}


def _class_table() -> Matrix:
    """Byte -> (letter, digit, upper, special, space, non-ascii) indicator matrix (256 x 6)."""
    table = np.zeros((256, 6))
    for b in range(256):
        c = chr(b)
        table[b] = [c.isascii() and c.isalpha(), c.isdigit(), c.isascii() and c.isupper(),
                    b < 128 and not c.isalnum() and c not in "/_-.=&?" and not c.isspace(),
                    c.isspace() or c == "+", b >= 128]  # fmt: skip
    return table


_CLASSES: Final = _class_table()


def request_texts(docs: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """(paths, queries, bodies, methods, user agents) of ECS documents ("" when absent; one ``map`` per level)."""
    e = _E
    docs = docs if isinstance(docs, list) else list(docs)
    url = _get(docs, "url", e)
    request = _get(_get(docs, "http", e), "request", e)
    return (
        _or_empty(_get(url, "path")),
        _or_empty(_get(url, "query")),
        _or_empty(_get(_get(request, "body", e), "content")),
        _or_empty(_get(request, "method")),
        _or_empty(_get(_get(docs, "user_agent", e), "original")),
    )


def _or_empty(values: list[Any]) -> list[str]:
    return [v or "" for v in values]


def _histograms(texts: list[str]) -> tuple[Matrix, npt.NDArray[np.int64]]:
    data = "\x00".join(texts).encode("utf-8", "surrogatepass")
    raw = np.frombuffer(data, dtype=np.uint8)
    owner = np.cumsum(raw == 0) if len(raw) else np.zeros(0, np.int64)
    keep = raw != 0
    hist = np.bincount(owner[keep] * 256 + raw[keep], minlength=len(texts) * 256).reshape(len(texts), 256)
    return hist.astype(np.float64), owner


def _entropy(hist: Matrix) -> Matrix:
    n = hist.sum(axis=1, keepdims=True)
    p = hist / np.maximum(n, 1.0)
    logs = np.zeros_like(p)
    seen = p > 0
    logs[seen] = np.log2(p[seen])  # most bytes never occur: no log of 0
    return np.asarray(-(p * logs).sum(axis=1), dtype=np.float64)


class RequestContent:
    """Per-request content features; ``fit`` learns the usual methods, user agents and parameter names."""

    def __init__(self, max_vocabulary: int = 10_000) -> None:
        self.max_vocabulary = max_vocabulary
        self.feature_names = list(FEATURES)

    def fit(self, docs: Sequence[Mapping[str, Any]]) -> RequestContent:
        _paths, queries, _bodies, methods, agents = request_texts(docs)
        n = max(1, len(docs))
        self.method_freq_ = {k: v / n for k, v in Counter(methods).items()}
        self.agent_freq_ = {k: v / n for k, v in Counter(agents).most_common(self.max_vocabulary)}
        params = Counter(p.split("=", 1)[0] for q in queries if q for p in q.split("&"))
        self.param_names_ = {k for k, v in params.most_common(self.max_vocabulary) if v >= 3}
        self.floor_ = 1.0 / (n + 1)
        return self

    def transform(self, docs: Sequence[Mapping[str, Any]]) -> Matrix:
        """The feature matrix (rows = documents, columns = :data:`FEATURES`)."""
        paths, queries, bodies, methods, agents = request_texts(docs)
        n = len(docs)
        if n == 0:
            return np.zeros((0, len(FEATURES)))
        texts = [f"{p}?{q} {b}" for p, q, b in zip(paths, queries, bodies, strict=True)]
        hist, _ = _histograms(texts)
        total = np.maximum(hist.sum(axis=1), 1.0)
        ratios = (hist @ _CLASSES) / total[:, None]
        body_hist, _ = _histograms(bodies)
        seq = np.zeros((n, len(_NAMES)))
        joined = "\n".join(texts)
        if joined:
            starts = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]])
            found = [(m.start(), _NAMES.index(m.lastgroup or "")) for m in _PATTERN.finditer(joined)]
            if found:
                pos, kind = np.array(found).T
                np.add.at(seq, (np.searchsorted(starts, pos, side="right") - 1, kind), 1.0)
        floor = self.floor_
        unknown, max_param, n_params, segs, max_seg = [], [], [], [], []
        known = self.param_names_
        for p, q in zip(paths, queries, strict=True):
            pieces = p.split("/")
            segs.append(len(pieces) - 1)
            max_seg.append(max(map(len, pieces)))
            parts = q.split("&") if q else []
            n_params.append(len(parts))
            unknown.append(sum(x.split("=", 1)[0] not in known for x in parts) if parts else 0)
            max_param.append(max(map(len, parts)) if parts else 0)
        columns = [
            np.log1p([len(p) for p in paths]), np.log1p([len(q) for q in queries]), np.log1p([len(b) for b in bodies]),
            np.array(segs, float), np.log1p(max_seg), np.array(n_params, float), np.array(unknown, float),
            np.log1p(max_param), np.array([b.count('":') for b in bodies], float), *ratios.T, _entropy(hist),
            _entropy(body_hist), *np.log1p(seq).T,
            np.array([-math.log(self.method_freq_.get(m, floor)) for m in methods]),
            np.array([-math.log(self.agent_freq_.get(a, floor)) for a in agents]), np.log1p([len(a) for a in agents]),
        ]  # fmt: skip
        return np.column_stack(columns).astype(np.float64)
