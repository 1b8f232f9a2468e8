"""The privacy chain in one pass: minimize, seal, pseudonymize, redact and mask fused over a compiled plan.

The separate transforms (:class:`~ingest.privacy.minimize.Minimizer`, :class:`~ingest.privacy.encrypt.Sealer`,
:class:`~ingest.privacy.pseudonymize.Pseudonymizer`, :class:`~ingest.privacy.redact.Redactor`,
:class:`~ingest.privacy.mask.Masker`) are the reference semantics; each walks the whole document. Once the
document is minimized, every field it still holds is an allowed catalogue field, so what each step does at
each path is known in advance: :class:`PrivacyPass` compiles, per source, one nested-dict plan (allowed or not,
leaf shape, sealed, pseudonymized, whole-field secret, skipped by redaction, masked) from the steps themselves
(their field trees, keys and caches) and walks the document once. At each leaf, the steps apply in the
reference order: seal the original value, pseudonymize, replace a whole-field secret, redact, mask. The
``logwarden.privacy`` entries are written afterwards, in the reference order (``dropped``, ``sealed``,
``sealed_key_id``, ``key_id``, ``redacted``, ``masked``).

:func:`fuse` builds the pass only when it is equivalent to running the steps in order (the chain starts with a
Minimizer, the steps come in the reference order, their fields are catalogue leaves, no step reads or writes
the ``logwarden.privacy`` fields another one writes); otherwise it returns the steps unchanged. The tests
check the equivalence on the golden records of every source, generated traffic and arbitrary documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ingest.pipeline import Transform
from ingest.privacy._doc import Tree, add_kinds, privacy_node
from ingest.privacy.encrypt import Sealer
from ingest.privacy.mask import Masker
from ingest.privacy.minimize import GEO_LEAF, SCALAR_TYPES, Minimizer, all_scalars, is_geo_point
from ingest.privacy.pseudonymize import Pseudonymizer
from ingest.privacy.redact import Redactor

# what a plan entry does with the value at its key
_DENY: Final = 0  # catalogued, not allowed for the source: removed silently
_OBJECT: Final = 1  # an object: walked with the child plan
_PLAIN: Final = 2  # a leaf no step changes (skipped by redaction)
_REDACT: Final = 3  # a leaf whose strings are redacted and nothing else (most free text)
_SPECIAL: Final = 4  # anything else: the flags say what

# flags of _SPECIAL entries
_SEAL: Final = 1
_PSEUDO: Final = 2
_SECRET: Final = 4
_SCAN: Final = 8
_MASK: Final = 16
_GEO: Final = 32
_SEAL_REMOVE: Final = 64

# outcome of a leaf
_KEEP: Final = 0
_DROP: Final = 1  # malformed for the catalogue: removed and named in logwarden.privacy.dropped
_DELETE: Final = 2  # pseudonymization found nothing identifying: removed

_MAX_DROPPED_NAMES: Final = 32
_STEP_ORDER: Final = (Minimizer, Sealer, Pseudonymizer, Redactor, Masker)
#: written by the steps, in this order; the redactor runs after the first four are written
_WRITTEN: Final = tuple(
    f"logwarden.privacy.{name}" for name in ("dropped", "sealed", "sealed_key_id", "key_id", "redacted", "masked")
)

#: (what, child plan, name, flags); name is the dotted field name, for objects with a trailing dot
Entry = tuple[int, "Plan | None", str, int]
Plan = dict[str, Entry]
#: what the steps make of a string leaf: (new value, kinds redacted, kinds masked)
_StringResult = tuple[str, frozenset[str], frozenset[str]]


class NotFusable(ValueError):
    """The steps cannot be fused into one equivalent pass (the message says why)."""


def fuse(steps: Sequence[Transform], *, cache_size: int = 16_384) -> list[Transform]:
    """``[PrivacyPass(steps)]`` when that is equivalent to running ``steps`` in order, else ``steps``."""
    try:
        return [PrivacyPass(steps, cache_size=cache_size)]
    except NotFusable:
        return list(steps)


def _leaves(tree: Tree, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, sub in tree.items():
        if type(sub) is dict:
            out |= _leaves(sub, f"{prefix}{key}.")
        else:
            out.add(prefix + key)
    return out


class PrivacyPass:
    """The privacy steps (a Minimizer first, then any of Sealer, Pseudonymizer, Redactor, Masker, in this order)
    applied in one walk per document. Raises :class:`NotFusable` when that would not be equivalent."""

    def __init__(self, steps: Sequence[Transform], *, cache_size: int = 16_384) -> None:
        self.steps = tuple(steps)
        by_type: dict[type, Any] = {}
        order = [_STEP_ORDER.index(type(s)) if type(s) in _STEP_ORDER else -1 for s in self.steps]
        if not order or order[0] != 0 or -1 in order or order != sorted(set(order)):
            raise NotFusable("the steps are not a Minimizer followed by the other privacy steps in order")
        for step in self.steps:
            by_type[type(step)] = step
        self._minimizer: Minimizer = by_type[Minimizer]
        self._sealer: Sealer | None = by_type.get(Sealer)
        self._pseudonymizer: Pseudonymizer | None = by_type.get(Pseudonymizer)
        self._redactor: Redactor | None = by_type.get(Redactor)
        self._masker: Masker | None = by_type.get(Masker)
        self._check()
        self._cache_size = cache_size
        self._clean = self._redactor.clean_strings if self._redactor is not None else set()
        self._strings: dict[int, dict[str, _StringResult]] = {flags: {} for flags in range(2 * _SEAL_REMOVE)}
        catalogue = self._minimizer.catalogue_tree
        self._default: Plan = self._compile(catalogue, catalogue, "")
        self._plans: dict[str, Plan] = {
            source: self._compile(tree, catalogue, "") for source, tree in self._minimizer.source_trees.items()
        }

    def __repr__(self) -> str:  # the steps' reprs never show a key
        return f"PrivacyPass({', '.join(map(repr, self.steps))})"

    # --- what the native fast path (ingest/native.py) reads: the compiled plan and the string steps ---------

    @property
    def pseudonymizer(self) -> Pseudonymizer | None:
        """The pseudonymization step of the pass, if any."""
        return self._pseudonymizer

    @property
    def sealer(self) -> Sealer | None:
        """The sealing step of the pass, if any."""
        return self._sealer

    def plan_for(self, source: str) -> Plan:
        """The compiled plan of documents whose ``logwarden.source`` is ``source`` (read-only)."""
        return self._plans.get(source, self._default)

    def string_leaf(self, value: str, flags: int) -> _StringResult:
        """What the steps make of the string ``value`` at a leaf with ``flags`` (after sealing), through the
        same cache as the walk: ``(new value, kinds redacted, kinds masked)``."""
        hit = self._strings[flags].get(value)
        return hit if hit is not None else self._string(value, flags)

    def _check(self) -> None:
        changed: set[str] = set()  # fields a step reads or changes (besides redaction)
        skip: set[str] = set()
        if self._sealer is not None:
            changed.update(self._sealer.fields)
            if not set(self._sealer.remove_fields) <= set(self._sealer.fields):
                raise NotFusable("the sealer removes fields it does not seal")
        if self._pseudonymizer is not None:
            changed.update(self._pseudonymizer.fields)
        if self._redactor is not None:
            changed.update(self._redactor.secret_fields)
            skip = set(self._redactor.skip_fields)
            if not set(_WRITTEN[:4]) <= skip:
                raise NotFusable("the redactor would scan logwarden.privacy fields written before it")
        if self._masker is not None:
            changed.update(self._masker.fields)
        if not changed | skip <= _leaves(self._minimizer.catalogue_tree):
            raise NotFusable("a step's field is not a leaf of the catalogue")
        if any(f.startswith("logwarden.privacy.") for f in changed):
            raise NotFusable("a step reads or changes logwarden.privacy fields")

    def _compile(self, allowed: Tree, catalogue: Tree, prefix: str) -> Plan:
        plan: Plan = {}
        for key, cat in catalogue.items():
            name = prefix + key
            if key not in allowed:
                plan[key] = (_DENY, None, name, 0)
                continue
            sub: Any = allowed[key]
            if type(sub) is dict:
                plan[key] = (_OBJECT, self._compile(sub, cat or {}, name + "."), name + ".", 0)
                continue
            flags = self._flags(name) | (_GEO if sub is GEO_LEAF else 0)
            what = _PLAIN if flags == 0 else _REDACT if flags == _SCAN else _SPECIAL
            plan[key] = (what, None, name, flags)
        return plan

    def _flags(self, name: str) -> int:
        flags = 0
        if self._sealer is not None and name in self._sealer.fields:
            flags |= _SEAL | (_SEAL_REMOVE if name in self._sealer.remove_fields else 0)
        if self._pseudonymizer is not None and name in self._pseudonymizer.fields:
            flags |= _PSEUDO
        if self._redactor is not None:
            flags |= _SECRET if name in self._redactor.secret_fields else 0
            flags |= 0 if name in self._redactor.skip_fields else _SCAN
        if self._masker is not None and name in self._masker.fields:
            flags |= _MASK
        return flags

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        source = self._minimizer.prepare(doc)
        plan = self._plans.get(source, self._default) if type(source) is str else self._default
        dropped: list[str] = []
        sealed: dict[str, Any] = {}
        redacted: set[str] = set()
        masked: set[str] = set()
        self._walk(doc, plan, "", dropped, sealed, redacted, masked)
        if dropped:
            self._minimizer.warn(dropped)
            privacy_node(doc)["dropped"] = sorted(dropped)[:_MAX_DROPPED_NAMES]
        if sealed and self._sealer is not None:
            self._sealer.store(doc, sealed)
        if self._pseudonymizer is not None:
            privacy_node(doc)["key_id"] = self._pseudonymizer.key_id
        if redacted:
            add_kinds(doc, "redacted", redacted)
        if masked:
            add_kinds(doc, "masked", masked)
        return doc

    def _walk(
        self,
        node: dict[str, Any],
        plan: Plan,
        prefix: str,
        dropped: list[str],
        sealed: dict[str, Any],
        redacted: set[str],
        masked: set[str],
    ) -> bool:
        """Apply the plan to ``node``; False when minimization removed all of it (the caller removes it)."""
        remove: list[str] | None = None
        kept = len(node)
        redactor = self._redactor
        clean = self._clean
        for key, value in node.items():
            entry = plan.get(key)
            if entry is None:  # not catalogued here
                dropped.append(f"{prefix}{key}"[:128])
            else:
                what, child, name, flags = entry
                kind = type(value)
                if what == _REDACT:
                    if kind is str:
                        if value not in clean:
                            new, found = redactor.redact(value)  # type: ignore[union-attr]
                            if found:
                                node[key] = new
                                redacted.update(found)
                        continue
                    if kind in SCALAR_TYPES:
                        continue
                    if kind is list and all_scalars(value):
                        node[key] = redactor.scan(value, redacted)  # type: ignore[union-attr]
                        continue
                    dropped.append(name[:128])
                elif what == _OBJECT:
                    if kind is dict:
                        if self._walk(value, child, name, dropped, sealed, redacted, masked):  # type: ignore[arg-type]
                            continue
                    else:
                        dropped.append(name[:-1][:128])
                elif what == _PLAIN:
                    if kind in SCALAR_TYPES or (kind is list and all_scalars(value)):
                        continue
                    dropped.append(name[:128])
                elif what == _SPECIAL:
                    if kind is str and not flags & _GEO:  # the common case, inline: one cache lookup
                        if flags & _SEAL:
                            sealed[name] = value
                            if flags & _SEAL_REMOVE:  # removed once sealed, never seen by the later steps
                                continue
                        hit = self._strings[flags].get(value)
                        if hit is None:
                            hit = self._string(value, flags)
                        new, found, found_masked = hit
                        if found:
                            redacted.update(found)
                        if found_masked:
                            masked.update(found_masked)
                        if new is not value:
                            node[key] = new
                        continue
                    outcome = self._leaf(node, key, value, flags, name, sealed, redacted, masked)
                    if outcome == _KEEP:
                        continue
                    if outcome == _DELETE:
                        kept += 1  # not a removal by minimization
                    else:
                        dropped.append(name[:128])
            kept -= 1
            if remove is None:
                remove = []
            remove.append(key)
        if remove:
            for key in remove:
                del node[key]
        return kept > 0

    def _string(self, value: str, flags: int) -> _StringResult:
        """The steps at a string leaf (after sealing), cached per string and flags (strings repeat all day)."""
        found: set[str] = set()
        found_masked: set[str] = set()
        new: Any = value
        if flags & _PSEUDO:
            new = self._pseudonymizer.pseudonymize_value(new)  # type: ignore[union-attr]
        if flags & _SECRET:
            new = "[REDACTED:secret]"
            found.add("secret")
        if flags & _SCAN:
            new = self._redactor.scan(new, found)  # type: ignore[union-attr]
        if flags & _MASK:
            new = self._masker.mask_value(new, found_masked)  # type: ignore[union-attr]
        result = (new, frozenset(found), frozenset(found_masked))
        cache = self._strings[flags]
        if len(cache) >= self._cache_size:
            cache.clear()
        cache[value] = result
        return result

    def _leaf(
        self,
        node: dict[str, Any],
        key: str,
        value: Any,
        flags: int,
        name: str,
        sealed: dict[str, Any],
        redacted: set[str],
        masked: set[str],
    ) -> int:
        """The steps at one leaf, in the reference order: shape check, seal, pseudonymize, secret, redact, mask."""
        kind = type(value)
        if flags & _GEO:
            if not is_geo_point(value):
                return _DROP
        elif kind not in SCALAR_TYPES and not (kind is list and all_scalars(value)):
            return _DROP
        if value is None:  # no step changes a null
            return _KEEP
        if flags & _SEAL:
            sealed[name] = value
            if flags & _SEAL_REMOVE:  # removed once sealed, never seen by the later steps
                return _KEEP
        if kind is list and value and not flags & _SECRET and all(type(v) is str for v in value):
            # a list of strings goes through the steps element by element: the string cache applies
            items: list[str] = []
            strings = self._strings[flags]
            for item in value:
                hit = strings.get(item)
                if hit is None:
                    hit = self._string(item, flags)
                items.append(hit[0])
                if hit[1]:
                    redacted.update(hit[1])
                if hit[2]:
                    masked.update(hit[2])
            node[key] = items
            return _KEEP
        new = value
        if flags & _PSEUDO:
            new = self._pseudonymizer.pseudonymize_value(new)  # type: ignore[union-attr]
            if new is None:
                return _DELETE
        if flags & _SECRET:
            new = "[REDACTED:secret]"
            redacted.add("secret")
        if flags & _SCAN:
            new = self._redactor.scan(new, redacted)  # type: ignore[union-attr]
        if flags & _MASK:
            new = self._masker.mask_value(new, masked)  # type: ignore[union-attr]
        if new is not value:
            node[key] = new
        return _KEEP
