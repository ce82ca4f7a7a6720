"""Dockerfile and .dockerignore: the properties the issue asks for, beyond hadolint/checkov."""

from __future__ import annotations

import json
import re

from conftest import CONTRACT_USER, DOCKERFILE, ROOT
from dockerfile_build_cmd import builder_build_command, builder_env, logical_lines, stages

CONTRACT_BUILD = "cargo build --release --locked --bin players-api"


def text() -> str:
    return DOCKERFILE.read_text()


def runtime_stage() -> list[str]:
    return list(stages(text()).values())[-1]


def test_builder_runs_the_contract_build_command():
    assert builder_build_command(text()) == CONTRACT_BUILD
    assert "SQLX_OFFLINE=true" in builder_env(text())


def test_dependency_caching_before_sources():
    b = stages(text())["builder"]
    cook = next(i for i, l in enumerate(b) if "cargo chef cook" in l)
    copy_src = next(i for i, l in enumerate(b) if re.match(r"COPY \. \.", l))
    build = next(i for i, l in enumerate(b) if l.startswith("RUN cargo build"))
    assert cook < copy_src < build
    assert "--release" in b[cook] and "--locked" in b[cook]


def test_base_images_pinned():
    froms = [l for l in logical_lines(text()) if l.upper().startswith("FROM ")]
    images = [l.split()[1] for l in froms]
    external = [i for i in images if i.lower() not in stages(text())]
    assert external
    for img in external:
        assert ":" in img.split("/")[-1], f"{img} has no tag"
        assert not img.endswith(":latest")
    assert any(re.fullmatch(r"rust:1\.95(\.\d+)?-slim-bookworm(@sha256:[0-9a-f]{64})?", i) for i in external)
    assert re.fullmatch(r"gcr\.io/distroless/cc-debian12:[a-z0-9.-]+(@sha256:[0-9a-f]{64})?", external[-1])


def test_runtime_stage():
    rt = runtime_stage()
    users = [l.split()[1] for l in rt if l.startswith("USER ")]
    assert users and users[-1].split(":")[0] == CONTRACT_USER
    entry = [l for l in rt if l.startswith("ENTRYPOINT ")]
    assert len(entry) == 1 and json.loads(entry[0][len("ENTRYPOINT "):]) == ["players-api", "serve"]
    hc = [l for l in rt if l.startswith("HEALTHCHECK ")]
    assert len(hc) == 1
    assert json.loads(hc[0].split(" CMD ", 1)[1]) == ["players-api", "healthcheck"]
    assert "EXPOSE 8080" in rt
    # Only the binary and the CA bundle are copied in; nothing from the build context.
    copies = [l for l in rt if l.startswith(("COPY", "ADD"))]
    assert all("--from=builder" in l for l in copies), copies
    assert any(l.endswith("/usr/local/bin/players-api") for l in copies)


def test_no_secrets_in_the_image():
    for l in logical_lines(text()):
        if l.startswith(("ARG", "ENV")):
            assert not re.search(r"(?i)password|secret(?!_arn)|token|aws_access_key", l), l


def test_header_comment_explains_ecr_push():
    head = text().split("FROM", 1)[0]
    for needle in ("aws ecr get-login-password", "docker buildx build", "--push"):
        assert needle in head


def test_dockerignore():
    ignored = {l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")}
    for needed in ("target/", ".git", ".tools/"):
        assert needed in ignored, needed
    for kept in ("src", "src/", "Cargo.toml", "Cargo.lock", "migrations", "migrations/"):
        assert kept not in ignored, kept
