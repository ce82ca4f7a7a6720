"""Shared helpers for the infrastructure tests (tests/infra)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA_TESTS = Path(__file__).resolve().parent
CFN_DIR = ROOT / "cloudformation"
TASK_DEF = ROOT / "ecs-task-def.json"
DOCKERFILE = ROOT / "Dockerfile"
SRC = ROOT / "src"

sys.path.insert(0, str(INFRA_TESTS))

TEMPLATES = ("network", "identity", "database", "service", "observability")

# Deployment defaults: drain = delay + timeout must fit in stopTimeout.
CONTRACT_SHUTDOWN_DELAY_SECS = 5
CONTRACT_SHUTDOWN_TIMEOUT_SECS = 25
CONTRACT_STOP_TIMEOUT = 40
CONTRACT_PORT = 8080
CONTRACT_HEALTH_PATH = "/health"
CONTRACT_USER = "65532"

# The placeholders ecs-task-def.json may contain; README.md's envsubst line must list them.
PLACEHOLDER_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def read_list(name: str) -> list[str]:
    out = []
    for line in (INFRA_TESTS / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def load_template(name: str) -> dict:
    from cfnlint.decode import decode

    path = CFN_DIR / f"{name}.yaml"
    template, matches = decode(str(path))
    assert not matches, f"{path} does not parse: {matches}"
    # Plain dict/list/str copies (cfn-lint's node classes behave like them, but JSON is simpler).
    return json.loads(json.dumps(template))


@pytest.fixture(scope="session")
def templates() -> dict[str, dict]:
    return {name: load_template(name) for name in TEMPLATES}


@pytest.fixture(scope="session")
def task_def_raw() -> str:
    return TASK_DEF.read_text()


@pytest.fixture(scope="session")
def task_def(task_def_raw) -> dict:
    return json.loads(task_def_raw)


def resources_of_type(template: dict, type_name: str) -> dict[str, dict]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == type_name}


def rust_sources() -> list[Path]:
    return sorted(SRC.rglob("*.rs")) if SRC.is_dir() else []


# Standard variables read by a library rather than by clap: AWS_REGION is read by aws-config's
# default region chain, so it counts as read when the service loads its config through
# aws-config (`aws_config::` in src) or declares it with clap itself.
SDK_STANDARD_ENV = {"AWS_REGION": "aws_config::"}


def src_env_vars() -> set[str]:
    """Environment variables the service reads: clap `env = "NAME"` in src/**/*.rs."""
    names: set[str] = set()
    texts = [path.read_text() for path in rust_sources()]
    for text in texts:
        names.update(re.findall(r'\benv\s*=\s*"([A-Z][A-Z0-9_]*)"', text))
    for name, marker in SDK_STANDARD_ENV.items():
        if any(marker in t for t in texts):
            names.add(name)
    return names


def app_container(task_def: dict) -> dict:
    (app,) = [c for c in task_def["containerDefinitions"] if c["name"] == "players-api"]
    return app
