"""The explicit package list of pyproject.toml matches the source tree, and the rules ship inside the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("ingest", "detectors", "alerting", "logwarden")


@pytest.fixture(scope="module")
def setuptools_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        config: dict[str, Any] = tomllib.load(f)["tool"]["setuptools"]
    return config


def tree_packages() -> set[str]:
    found = set()
    for top in TOP_LEVEL:
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_of_the_tree_is_listed(setuptools_config: dict[str, Any]) -> None:
    listed = set(setuptools_config["packages"])
    missing = sorted(tree_packages() - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_listed_package_exists(setuptools_config: dict[str, Any]) -> None:
    package_dir = setuptools_config.get("package-dir", {})
    stale = []
    for name in setuptools_config["packages"]:
        folder = ROOT / package_dir.get(name, name.replace(".", "/"))
        if not folder.is_dir():
            stale.append(name)
        elif name not in package_dir and not (folder / "__init__.py").is_file():
            stale.append(f"{name} (no __init__.py)")
    assert not stale, f"listed in pyproject.toml but missing from the tree: {stale}"


def test_top_level_packages_are_importable_packages() -> None:
    assert {p.split(".")[0] for p in tree_packages()} == set(TOP_LEVEL)


def test_bundled_rules_map_to_the_rules_folder(setuptools_config: dict[str, Any]) -> None:
    assert "logwarden.bundled_rules" in setuptools_config["packages"]
    assert setuptools_config["package-dir"]["logwarden.bundled_rules"] == "rules"
    assert "**/*.yml" in setuptools_config["package-data"]["logwarden.bundled_rules"]
    assert list((ROOT / "rules").rglob("*.yml")), "rules/ holds no rule files to ship"


def test_console_script() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    assert project["scripts"] == {"logwarden": "logwarden.cli:main"}
