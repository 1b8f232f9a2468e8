"""The per-event work of a field index as one generated function: read the indexed fields, OR their rule masks.

:meth:`detectors.sigma.index.FieldIndex.mask` reads each indexed field of an event into its
:class:`~detectors.sigma.fields.FieldView` and ORs the rule mask of the field's values (a remembered one for
a single text or integer value, else :meth:`_FieldAtoms.mask`). As a loop over the fields that costs a
getter call, a tuple unpacking and a view lookup per field, which was a quarter of the engine's time per
event. :func:`compile_mask` writes the same steps unrolled as Python source, with the objects a dotted path
goes through read once for every field below them (``http`` for ``http.request.method`` and
``http.response.bytes``). Anything but objects all the way down to a present value (a list on the way, a
flat dotted key, an absent field) takes the field's general getter, so the values are exactly
:func:`detectors.sigma.fields.field_getter`'s. The extension ``ingest._native`` has the same function in Rust
(``RuleMask``, ``native/src/rule_mask.rs``: about 20% fewer instructions per event of the whole engine); it is
used when built, unless ``LOGWARDEN_NATIVE=0``.

>>> from detectors.sigma.fields import FieldView
>>> memo = {"a": 1, "b": 2}
>>> mask = compile_mask([("event.action", memo, lambda values: 4, 0)], always=0, low=-1, shifts=[])
>>> view = FieldView.of({"event": {"action": "b"}})
>>> mask(view), view["event.action"]
(2, ['b'])
>>> mask(FieldView.of({"event.action": ["a", "c"]}))  # not one remembered value: the field's own mask
4
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from detectors.sigma.fields import FieldView, field_getter

#: An indexed field: its name, the masks remembered per single value, the mask of any list of values, and
#: ``need``: 0 to read it for every event, else the rules (bits) that need it (see :func:`compile_mask`).
FieldMask = tuple[str, dict[Any, int], Callable[[list[Any]], int], int]

_MISSING: Any = object()

try:
    from ingest import _native  # type: ignore[attr-defined]
except ImportError:  # built without cargo: pure Python
    _native = None
#: The same function in Rust (``native/src/rule_mask.rs``), when the extension has it.
_RuleMask: Any = getattr(_native, "RuleMask", None)


def native_available() -> bool:
    """True when the extension has the native mask and it is not switched off (``LOGWARDEN_NATIVE=0``)."""
    return _RuleMask is not None and os.environ.get("LOGWARDEN_NATIVE", "1") != "0"


def compile_mask(
    fields: Sequence[FieldMask], *, always: int, low: int, shifts: Sequence[int], native: bool | None = None
) -> Callable[[FieldView], int]:
    """A function ``view -> mask``: ``always`` OR the masks of ``fields`` (each read into the view), then, when
    ``shifts`` is not empty, the bits of ``low`` whose copies shifted by every one of ``shifts`` are on too.

    A field with a ``need`` comes after the others and is read only when one of those bits is on by then: its
    atoms only complete rules that the other fields select (the further atom sets of an AND), so a rule it
    could complete is not a candidate anyway without one of them.

    ``native``: the extension's version of the function (the default when :func:`native_available`), else the
    generated Python one."""
    if native if native is not None else native_available():
        specs = [(name, field_getter(name), memo, mask_of, need) for name, memo, mask_of, need in fields]
        rule_mask: Callable[[FieldView], int] = _RuleMask(specs, always, low, list(shifts))
        return rule_mask
    namespace: dict[str, Any] = {"MISSING": _MISSING}
    lines = ["def mask(view):", "    raw = view.doc", f"    found = {always}"]
    prefixes: dict[tuple[str, ...], str] = {}  # an object on the way of a path -> the variable holding it
    names = (f"n{i}" for i in itertools.count())
    for i, (name, memo, mask_of, need) in sorted(enumerate(fields), key=lambda field: field[1][3] != 0):
        namespace[f"G{i}"], namespace[f"M{i}"], namespace[f"A{i}"] = field_getter(name), memo, mask_of
        indent = "    "
        known = prefixes
        if need:
            lines.append(f"    if found & {need}:")
            indent, known = "        ", dict(prefixes)  # objects first read here are not read for later fields
        lines += [f"{indent}{line}" for line in _read(name, f"G{i}", known, names)]
        lines += [
            f"{indent}view[{name!r}] = values",
            f"{indent}if len(values) == 1 and ((k := type(v := values[0])) is str or k is int) and (h := M{i}.get(v)) is not None:",  # noqa: E501
            f"{indent}    found |= h",
            f"{indent}else:",
            f"{indent}    found |= A{i}(values)",
        ]
    if shifts:
        lines.append(f"    candidates = found & {low}")
        lines += [f"    candidates &= found >> {shift}" for shift in shifts]
        lines.append("    return candidates")
    else:
        lines.append("    return found")
    source = compile("\n".join(lines), "<rule index mask>", "exec")
    exec(source, namespace)  # built above: field names only as repr() literals
    function: Callable[[FieldView], int] = namespace["mask"]
    return function


def _read(name: str, getter: str, prefixes: dict[tuple[str, ...], str], names: Iterator[str]) -> list[str]:
    """Source lines setting ``values`` to the values of ``name`` (declaring the objects on its path once)."""
    parts = tuple(name.split("."))
    out = []
    node = "raw"
    for depth in range(1, len(parts)):
        path = parts[:depth]
        variable = prefixes.get(path)
        if variable is None:
            variable = prefixes[path] = next(names)
            parent_is_object = "" if node == "raw" else f" if type({node}) is dict else MISSING"
            out.append(f"{variable} = {node}.get({parts[depth - 1]!r}, MISSING){parent_is_object}")
        node = variable
    parent_is_object = "" if node == "raw" else f" if type({node}) is dict else MISSING"
    out.append(f"v = {node}.get({parts[-1]!r}, MISSING){parent_is_object}")
    absent = "[]" if len(parts) == 1 else f"{getter}(raw)"  # a dotted name may still be a flat key, or under a list
    out.append(f"values = {absent} if v is MISSING else v if type(v) is list else [v]")
    return out
