"""The container files, checked without a Docker engine: the Dockerfile linted by hadolint, the
compose file validated against the compose specification's schema, the lock file in step with
pyproject.toml, and no way for a key into the image."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
LOCK = ROOT / "requirements.lock"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is a dev dependency (pip install -e '.[dev]')")
    return found


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_the_dockerfile_passes_hadolint_with_no_warning_at_all() -> None:
    linted = hadolint(DOCKERFILE)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout.strip() == ""


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    linted = hadolint(careless)
    assert linted.returncode != 0
    assert "DL3007" in linted.stdout  # the `latest` tag


def test_the_compose_file_is_valid_against_the_compose_schema(tmp_path: Path) -> None:
    checked = validate_compose(COMPOSE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    restart: unless-stopped", "    restrat: x"))
    assert validate_compose(broken).returncode != 0


def test_compose_runs_the_agent_unattended_and_the_simulation_without_keys() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    agent, sim = compose["services"]["agent"], compose["services"]["sim"]
    assert agent["restart"] == "unless-stopped"
    assert [entry["path"] for entry in agent["env_file"]] == ["../.env"]
    for service in (agent, sim):
        assert "../config:/app/config:ro" in service["volumes"]
        assert "runs:/app/runs" in service["volumes"]
        assert service["logging"]["options"]["max-size"]
        assert service["stop_signal"] == "SIGTERM"
    assert "runs" in compose["volumes"]
    assert sim["profiles"] == ["sim"]
    assert "env_file" not in sim
    assert sim["command"][:3] == ["run", "--config", "config/sim.toml"]
    for service in (agent, sim):
        config = service["command"][service["command"].index("--config") + 1]
        assert (ROOT / config).exists()
        run_dir = service["command"][service["command"].index("--run-dir") + 1]
        assert service["environment"]["SPILLOVER_RUN_DIR"] == run_dir  # what the health check reads


def pins() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) from requirements.lock."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            found[canonicalize_name(name)] = (version, 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[canonicalize_name(name)]
            found[canonicalize_name(name)] = (version, hashes + 1)
    return found


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    problems = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        wanted = [canonicalize_name(requirement.name)]
        wanted += [canonicalize_name(extra) for extra in requirement.extras]  # dask[distributed]
        for name in wanted:
            if name not in pinned:
                problems.append(f"{name} is not in requirements.lock")
        version = pinned.get(canonicalize_name(requirement.name), ("", 0))[0]
        if version and not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} does not satisfy {text}")
    unhashed = [name for name, (_, hashes) in pinned.items() if hashes == 0]
    assert not problems, "regenerate requirements.lock (command at its top): " + "; ".join(problems)
    assert not unhashed


def test_no_key_can_reach_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*")] == "*"  # everything excluded, then named paths let in
    allowed = [line[1:] for line in ignored if line.startswith("!")]
    assert not [path for path in allowed if ".env" in path]
    copies = [line.split()[1:-1] for line in DOCKERFILE.read_text().splitlines()]
    copied = [
        source
        for line, sources in zip(DOCKERFILE.read_text().splitlines(), copies, strict=True)
        if line.startswith("COPY ") and "--from=" not in line
        for source in sources
    ]
    assert copied, "no COPY found"
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert ".env" not in source
        assert source.rstrip("/") in {a.rstrip("/") for a in allowed}, f"{source} is ignored"
    build_args = DOCKERFILE.read_text().replace("ARG PYTHON_VERSION", "")
    assert "ARG " not in build_args  # nothing secret can be passed in at build time
