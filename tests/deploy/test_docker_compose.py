"""Static checks of the production-like route: docker-compose.yml, Dockerfile, .dockerignore.

The compose file is parsed with PyYAML (anchors and ``<<`` merge keys resolve as in Compose). When a Docker
client with the compose plugin exists, ``docker compose config -q`` validates the file for real; where the
plugin is missing that one test is reported as XFAIL with the reason, never as a silent pass.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSECHECK = ROOT / "deploy" / "local" / "composecheck"
COMPOSE_FILE = ROOT / "docker-compose.yml"

INFRA_SERVICES = {"kafka", "elasticsearch", "kibana", "prometheus", "alertmanager"}
LOGWARDEN_SERVICES = {"logwarden-setup", "logwarden"}
REQUIRED_LOGWARDEN_ENV = {
    "LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS",
    "LOGWARDEN_ELASTICSEARCH_URL",
    "LOGWARDEN_ALERTMANAGER_URL",
    "LOGWARDEN_METRICS_PORT",
    "LOGWARDEN_METRICS_HOST",
    "LOGWARDEN_KIBANA_URL",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """depends_on in either syntax, as {target: {"condition": ...}}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return {name: (spec or {"condition": "service_started"}) for name, spec in deps.items()}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            parts = entry.split(":")
            mounts.append((parts[0], parts[1] if len(parts) > 1 else parts[0]))
        else:
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
    return mounts


def _is_bind_source(source: str) -> bool:
    return source.startswith(("./", "../", "/", "~"))


def test_all_services_present(services: dict[str, Any]) -> None:
    missing = (INFRA_SERVICES | LOGWARDEN_SERVICES) - services.keys()
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    offenders = {
        name: svc.get("image")
        for name, svc in services.items()
        if ":" not in str(svc.get("image", "")) or str(svc.get("image")).endswith(":latest")
    }
    assert not offenders, f"images without a pinned tag: {offenders}"


def test_kibana_and_elasticsearch_versions_match(services: dict[str, dict[str, Any]]) -> None:
    es_tag = services["elasticsearch"]["image"].rsplit(":", 1)[1]
    kibana_tag = services["kibana"]["image"].rsplit(":", 1)[1]
    assert es_tag == kibana_tag, f"Kibana {kibana_tag} must match Elasticsearch {es_tag}"


def test_elasticsearch_major_matches_python_client(services: dict[str, dict[str, Any]]) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"elasticsearch>=(\d+)\.', pyproject)
    assert match, "pyproject.toml should pin the elasticsearch client's major version"
    es_tag = services["elasticsearch"]["image"].rsplit(":", 1)[1]
    assert es_tag.split(".")[0] == match.group(1), "server and client must share the major version"


def test_every_depends_on_target_exists(services: dict[str, dict[str, Any]]) -> None:
    dangling = {
        f"{name} -> {target}" for name, svc in services.items() for target in _depends_on(svc) if target not in services
    }
    assert not dangling, f"depends_on targets that are not services: {sorted(dangling)}"


def test_health_conditions_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    offenders = sorted(
        f"{name} -> {target}"
        for name, svc in services.items()
        for target, spec in _depends_on(svc).items()
        if spec.get("condition") == "service_healthy" and "healthcheck" not in services.get(target, {})
    )
    assert not offenders, f"service_healthy on services without a healthcheck: {offenders}"


def test_worker_waits_for_setup_to_complete(services: dict[str, dict[str, Any]]) -> None:
    deps = _depends_on(services["logwarden"])
    assert deps.get("logwarden-setup", {}).get("condition") == "service_completed_successfully"
    assert "alertmanager" in deps


def test_setup_is_a_one_shot_job_after_kafka_and_elasticsearch(services: dict[str, dict[str, Any]]) -> None:
    setup = services["logwarden-setup"]
    assert setup.get("restart") == "no"
    deps = _depends_on(setup)
    for target in ("kafka", "elasticsearch"):
        assert deps.get(target, {}).get("condition") == "service_healthy", f"setup must wait for {target}"


def test_logwarden_services_run_the_cli_from_one_image(services: dict[str, dict[str, Any]]) -> None:
    setup, worker = services["logwarden-setup"], services["logwarden"]
    assert setup["image"] == worker["image"] == "logwarden:local"
    assert setup.get("build"), "the setup job builds the image"
    # the image's ENTRYPOINT is `logwarden`, so the command is the subcommand
    assert setup["command"][:1] == ["setup"] and "--kibana" in setup["command"]  # dashboards imported too
    assert worker["command"] in (["run"], "run")
    assert worker.get("restart") == "unless-stopped"


def test_bind_mounted_config_files_exist(services: dict[str, dict[str, Any]]) -> None:
    binds = [
        (name, source) for name, svc in services.items() for source, _ in _volume_mounts(svc) if _is_bind_source(source)
    ]
    assert binds, "prometheus and alertmanager mount their configs from the repository"
    missing = [f"{name}: {source}" for name, source in binds if not (ROOT / source).exists()]
    assert not missing, f"bind-mounted paths missing from the repository: {missing}"
    mounted = {source.removeprefix("./") for _, source in binds}
    for required in (
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/rules",
        "deploy/alertmanager/alertmanager.yml",
    ):
        assert required in mounted, f"{required} is not mounted"


def test_published_ports_bind_loopback(services: dict[str, dict[str, Any]]) -> None:
    offenders = []
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            if host_ip != "127.0.0.1":
                offenders.append(f"{name}: {port}")
    assert not offenders, f"ports published beyond 127.0.0.1: {offenders}"
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert {"elasticsearch", "kibana", "prometheus", "alertmanager"} <= published


def test_named_volumes_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    used = {
        source
        for svc in services.values()
        for source, _ in _volume_mounts(svc)
        if source and not _is_bind_source(source)
    }
    assert used, "stateful services keep their data in named volumes"
    assert not used - declared, f"named volumes used but not declared: {sorted(used - declared)}"
    for name in ("kafka", "elasticsearch", "prometheus", "alertmanager"):
        assert any(not _is_bind_source(src) for src, _ in _volume_mounts(services[name])), (
            f"{name} has no named data volume"
        )


def test_logwarden_env_uses_only_prefixed_variables(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    shared = compose.get("x-logwarden-env")
    assert isinstance(shared, dict), "shared logwarden env belongs in the x-logwarden-env anchor"
    for name in sorted(LOGWARDEN_SERVICES):
        env = _environment(services[name])
        unprefixed = sorted(key for key in env if not key.startswith("LOGWARDEN_"))
        assert not unprefixed, f"{name}: environment variables without LOGWARDEN_ prefix: {unprefixed}"
        missing = REQUIRED_LOGWARDEN_ENV - env.keys()
        assert not missing, f"{name}: missing {sorted(missing)}"
        assert set(shared) <= env.keys(), f"{name} does not use the x-logwarden-env anchor"


def test_logwarden_env_points_at_compose_services(compose: dict[str, Any]) -> None:
    env = compose["x-logwarden-env"]
    assert env["LOGWARDEN_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["LOGWARDEN_ELASTICSEARCH_URL"] == "http://elasticsearch:9200"
    assert env["LOGWARDEN_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    assert env["LOGWARDEN_METRICS_HOST"] == "0.0.0.0"


def test_prometheus_scrapes_the_worker_metrics_port(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    port = str(compose["x-logwarden-env"]["LOGWARDEN_METRICS_PORT"])
    assert port in [str(p) for p in services["logwarden"].get("expose", [])]
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    targets = [t for sc in jobs["logwarden"]["static_configs"] for t in sc["targets"]]
    assert targets == [f"logwarden:{port}"]


def test_kafka_is_a_single_kraft_node(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[key] == "1", key


def test_dockerfile_runs_the_cli_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert "pip install --no-cache-dir ." in dockerfile
    users = [line.split(None, 1)[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert 'ENTRYPOINT ["logwarden"]' in instructions
    assert 'logwarden = "logwarden.cli:main"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_dockerignore_excludes_local_state() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", ".logwarden", "**/__pycache__", ".pytest_cache"):
        assert required in patterns, f".dockerignore must exclude {required}"


def _compose_plugin_problem() -> str | None:
    """None when `docker compose` works here, else why it does not."""
    docker = shutil.which("docker")
    if docker is None:
        return "no `docker` client on PATH"
    try:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return "`docker compose version` timed out"
    if probe.returncode != 0:
        output = (probe.stderr or probe.stdout).strip().splitlines()
        return f"`docker compose version` failed (exit {probe.returncode}): {output[0] if output else ''}"
    return None


def _compose_command(tmp_path: Path) -> list[str]:
    """``docker compose config -q`` when the plugin works here, else our compose-go checker (built with Go)."""
    if _compose_plugin_problem() is None:
        return ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    go = shutil.which("go")
    assert go, "neither `docker compose` nor Go is available to validate docker-compose.yml"
    binary = tmp_path / "composecheck"
    build = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=COMPOSECHECK,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, f"building {COMPOSECHECK} failed:\n{build.stderr}"
    return [str(binary), str(COMPOSE_FILE), str(ROOT)]


def test_docker_compose_config_is_valid(tmp_path: Path) -> None:
    """The file loads in compose-go (the loader of `docker compose`): schema, interpolation, dependencies."""
    result = subprocess.run(
        _compose_command(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"compose validation failed:\n{result.stdout}\n{result.stderr}"


def test_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: a depends_on condition that does not exist is refused."""
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text(encoding="utf-8").replace(
        "service_completed_successfully", "service_finished_somehow", 1
    )
    broken.write_text(text, encoding="utf-8")
    command = [part if part != str(COMPOSE_FILE) else str(broken) for part in _compose_command(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
