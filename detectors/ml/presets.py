"""Training presets (``entity-behaviour``, ``request-content``) and their YAML overrides.

A config file may override any of: ``detector``, ``params``, ``threshold`` (``{alerts_per_day: N}`` or
``{quantile: q}``), ``refit_without_flagged``, ``top_features``, and for behaviour ``windows`` (minutes),
``entities``, ``lateness_hops``, ``offhours_utc``, ``ewma_alpha``, ``min_history``.

>>> load_preset("request-content").detector, load_preset("entity-behaviour").detector
('ecod', 'ecod')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detectors.errors import DetectorError
from detectors.ml.features.behaviour import BehaviourConfig


class PresetError(DetectorError):
    """An unknown preset or a bad override."""


@dataclass(frozen=True)
class Preset:
    """What to extract, which detector to fit, how to set the threshold."""

    name: str
    family: str  # behaviour | content
    detector: str
    params: dict[str, Any] = field(default_factory=dict)
    threshold: dict[str, float] = field(default_factory=lambda: {"alerts_per_day": 10.0})
    behaviour: BehaviourConfig | None = None
    refit_without_flagged: bool = True
    top_features: int = 3


PRESETS: dict[str, Preset] = {
    "entity-behaviour": Preset(
        "entity-behaviour", "behaviour", "ecod", {"aggregate": "sum_max"}, {"alerts_per_day": 10.0},
        BehaviourConfig(),
    ),
    "request-content": Preset("request-content", "content", "ecod", {}, {"alerts_per_day": 10.0}),
}  # fmt: skip
_BEHAVIOUR_KEYS = {f.name for f in dataclasses.fields(BehaviourConfig)}


def load_preset(name: str, config: Path | None = None) -> Preset:
    """The preset ``name`` with the overrides of the YAML file ``config`` (when given)."""
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if config is None:
        return preset
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PresetError(f"{config}: {exc}") from None
    if not isinstance(data, dict):
        raise PresetError(f"{config}: expected a mapping of overrides")
    top = {"detector", "params", "threshold", "refit_without_flagged", "top_features"}
    unknown = set(data) - top - _BEHAVIOUR_KEYS
    if unknown:
        raise PresetError(f"{config}: unknown keys {sorted(unknown)}")
    behaviour = preset.behaviour
    overrides: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
                                 if k in _BEHAVIOUR_KEYS}  # fmt: skip
    if overrides:
        if behaviour is None:
            raise PresetError(f"{config}: {sorted(overrides)} only apply to behaviour presets")
        try:
            behaviour = dataclasses.replace(behaviour, **overrides)
        except (TypeError, ValueError) as exc:
            raise PresetError(f"{config}: {exc}") from None
    changes = {k: v for k, v in data.items() if k in top}
    if "detector" in changes and "params" not in changes:
        changes["params"] = {}
    return dataclasses.replace(preset, behaviour=behaviour, **changes)
