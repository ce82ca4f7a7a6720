"""ecs-task-def.json: botocore's RegisterTaskDefinition input shape plus explicit assertions
for what the model does not check (enums, maxima, security settings)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from botocore.session import Session
from botocore.validate import ParamValidator

from conftest import (
    CONTRACT_PORT,
    CONTRACT_SHUTDOWN_DELAY_SECS,
    CONTRACT_SHUTDOWN_TIMEOUT_SECS,
    CONTRACT_STOP_TIMEOUT,
    CONTRACT_USER,
    PLACEHOLDER_RE,
    ROOT,
    TASK_DEF,
    app_container,
)

# Sample values used to render the placeholders (the shapes real values have).
SAMPLE = {
    "AWS_ACCOUNT_ID": "123456789012",
    "AWS_REGION": "eu-west-1",
    "IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/players-api:0123456789ab",
    "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/players-service-TaskRole-ABC",
    "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/players-service-ExecutionRole-DEF",
    "LOG_GROUP": "/ecs/players/players-api",
    "DB_HOST": "players-db.abcdefghij.eu-west-1.rds.amazonaws.com",
    "DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:players/players-api/db-app-user-AbCdEf",
    "DB_SSLROOTCERT": "/etc/ssl/certs/ca-certificates.crt",
    "ALB_ARN": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/players/0123456789abcdef",
    "OIDC_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
    "ALB_CLIENT_ID": "1a2b3c4d5e6f7g8h9i0j1k2l3m",
    "PUBLIC_HOST": "players.example.com",
    "AUTH_LOGOUT_URL": "https://players-auth.auth.eu-west-1.amazoncognito.com/logout?client_id=x&logout_uri=https://players.example.com/logged-out",
    "BEARER_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
    "BEARER_CLIENT_IDS": "4m5n6o7p8q9r0s1t2u3v4w5x6y",
}

# Valid Fargate task cpu -> memory (MiB) combinations (Linux).
FARGATE_PAIRS = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}

SECRET_VALUE_FROM = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]+"
    r"(:[A-Za-z0-9_.-]*:(AWSCURRENT|AWSPREVIOUS|[A-Za-z0-9_-]*):[A-Za-z0-9-]*)?$"
)
SSM_VALUE_FROM = re.compile(r"^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_./-]+|[A-Za-z0-9_./-]+)$")


def documented_envsubst_line() -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    lines = [l for l in text.splitlines() if "envsubst" in l and "ecs-task-def.json" in l]
    assert len(lines) == 1, f"docs/deploy.md must have exactly one envsubst render line, found {lines}"
    return lines[0]


def render(raw: str, values: dict[str, str]) -> str:
    """Renders like the documented `envsubst '<list>'` one-liner (only the listed names)."""
    line = documented_envsubst_line()
    m = re.search(r"envsubst\s+'([^']+)'", line)
    assert m, f"envsubst must be given an explicit variable list: {line}"
    listed = PLACEHOLDER_RE.findall(m.group(1))
    env = {k: values[k] for k in listed}
    if shutil.which("envsubst"):
        out = subprocess.run(
            ["envsubst", m.group(1)], input=raw, text=True, capture_output=True, check=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        ).stdout
    else:  # same semantics in Python when gettext's envsubst is absent
        out = PLACEHOLDER_RE.sub(lambda mm: env.get(mm.group(1), mm.group(0)), raw)
    return out


@pytest.fixture(scope="module")
def rendered(task_def_raw) -> dict:
    return json.loads(render(task_def_raw, SAMPLE))


def test_placeholders_are_exactly_the_documented_ones(task_def_raw):
    used = set(PLACEHOLDER_RE.findall(task_def_raw))
    listed = set(PLACEHOLDER_RE.findall(documented_envsubst_line()))
    assert used, "ecs-task-def.json must use ${PLACEHOLDER}s for account/region/image/ARNs"
    assert used == listed, f"envsubst list mismatch: only in json {used - listed}, only in docs {listed - used}"
    assert used <= set(SAMPLE), f"test has no sample value for {used - set(SAMPLE)}"


def test_render_leaves_no_placeholder(task_def_raw):
    out = render(task_def_raw, SAMPLE)
    assert "${" not in out
    json.loads(out)


def test_matches_botocore_register_task_definition_shape(rendered):
    shape = Session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(rendered, shape)
    assert not report.has_errors(), report.generate_report()


def test_validator_rejects_a_broken_document(rendered):
    """The shape check above can fail: a wrong type and an unknown key are reported."""
    shape = Session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    bad = json.loads(json.dumps(rendered))
    bad["containerDefinitions"][0]["stopTimeout"] = "40"
    bad["notAKey"] = 1
    assert ParamValidator().validate(bad, shape).has_errors()


def test_fargate_awsvpc_platform(rendered):
    assert rendered["networkMode"] == "awsvpc"
    assert rendered["requiresCompatibilities"] == ["FARGATE"]
    assert rendered["runtimePlatform"]["operatingSystemFamily"] == "LINUX"
    assert rendered["runtimePlatform"]["cpuArchitecture"] in {"X86_64", "ARM64"}


def test_cpu_memory_is_a_valid_fargate_pair(rendered):
    cpu, mem = int(rendered["cpu"]), int(rendered["memory"])
    assert cpu in FARGATE_PAIRS, f"cpu {cpu} is not a Fargate size"
    assert mem in FARGATE_PAIRS[cpu], f"memory {mem} is not valid with cpu {cpu}"
    containers = rendered["containerDefinitions"]
    assert sum(c.get("cpu", 0) for c in containers) <= cpu
    assert sum(c.get("memory", c.get("memoryReservation", 0)) for c in containers) <= mem


def test_separate_execution_and_task_roles(rendered):
    assert rendered["executionRoleArn"] and rendered["taskRoleArn"]
    assert rendered["executionRoleArn"] != rendered["taskRoleArn"]


@pytest.mark.parametrize("name", ["players-api", "aws-otel-collector"])
def test_every_container_is_locked_down(rendered, name):
    (c,) = [c for c in rendered["containerDefinitions"] if c["name"] == name]
    assert c["readonlyRootFilesystem"] is True
    assert c.get("privileged", False) is False
    user = c["user"]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"user must be numeric, got {user!r}"
    assert int(user.split(":")[0]) != 0, "user must not be root"
    lp = c["linuxParameters"]
    assert lp["initProcessEnabled"] is True
    assert lp["capabilities"]["drop"] == ["ALL"]
    assert not lp["capabilities"].get("add")
    log = c["logConfiguration"]
    assert log["logDriver"] == "awslogs"
    opts = log["options"]
    assert opts["mode"] == "non-blocking"
    assert re.fullmatch(r"\d+[kmg]", opts["max-buffer-size"])
    assert opts["awslogs-stream-prefix"]
    assert opts["awslogs-group"] and opts["awslogs-region"]
    assert "healthCheck" in c


def test_app_container(rendered):
    app = app_container(rendered)
    assert app["essential"] is True
    assert app["user"] == CONTRACT_USER
    assert app["portMappings"] == [
        {"name": "http", "containerPort": CONTRACT_PORT, "hostPort": CONTRACT_PORT, "protocol": "tcp", "appProtocol": "http"}
    ]
    assert app["healthCheck"]["command"] == ["CMD", "players-api", "healthcheck"]
    hc = app["healthCheck"]
    assert 5 <= hc["interval"] <= 300 and 2 <= hc["timeout"] < hc["interval"]
    assert 1 <= hc["retries"] <= 10 and 0 <= hc["startPeriod"] <= 300
    # /tmp is the only writable path.
    assert [m["containerPath"] for m in app.get("mountPoints", [])] == ["/tmp"]


def test_stop_timeout_covers_the_drain(rendered):
    app = app_container(rendered)
    env = {e["name"]: e["value"] for e in app["environment"]}
    stop = app["stopTimeout"]
    assert stop <= 120, "Fargate maximum stopTimeout is 120 s"
    assert stop == CONTRACT_STOP_TIMEOUT
    assert stop >= CONTRACT_SHUTDOWN_DELAY_SECS + CONTRACT_SHUTDOWN_TIMEOUT_SECS
    delay = int(env.get("SHUTDOWN_DELAY_SECS", CONTRACT_SHUTDOWN_DELAY_SECS))
    timeout = int(env.get("SHUTDOWN_TIMEOUT_SECS", CONTRACT_SHUTDOWN_TIMEOUT_SECS))
    assert stop >= delay + timeout, f"stopTimeout {stop} < drain {delay}+{timeout}"


def test_environment_is_plain_config_without_credentials(rendered):
    for c in rendered["containerDefinitions"]:
        names = [e["name"] for e in c.get("environment", [])]
        assert len(names) == len(set(names)), f"duplicate env names in {c['name']}"
        for n in names:
            assert not re.search(r"PASSWORD|TOKEN|PRIVATE_KEY|SECRET(?!_ARN$)", n), n
        for e in c.get("environment", []):
            assert not re.search(r"(?i)password=|://[^/@\s]+:[^/@\s]+@", e["value"]), e
    app = app_container(rendered)
    env = {e["name"]: e["value"] for e in app["environment"]}
    # The service reads its credentials itself from this secret (task role).
    assert SECRET_VALUE_FROM.match(env["DB_SECRET_ARN"]), env["DB_SECRET_ARN"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert env["LISTEN_ADDR"].endswith(f":{CONTRACT_PORT}")
    assert env["ALB_SIGNER_ARNS"].startswith("arn:aws:elasticloadbalancing:")
    for required in ("ALB_SIGNER_ARNS", "ALB_ISSUER", "ALB_CLIENT_ID", "DB_HOST", "DB_PORT", "DB_NAME",
                     "DB_SECRET_ARN", "OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_LEVEL"):
        assert env.get(required), f"{required} must be set"


def value_from_ok(value_from: str) -> bool:
    return bool(SECRET_VALUE_FROM.match(value_from) or SSM_VALUE_FROM.match(value_from))


def test_value_from_checker_can_fail():
    assert value_from_ok("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf:client_secret::")
    assert value_from_ok("arn:aws:ssm:eu-west-1:123456789012:parameter/players/flag")
    assert not value_from_ok("arn:aws:secretsmanager:eu-west-1:1234:secret:x")
    assert not value_from_ok("secret:app:key")


def test_every_value_from_is_well_formed(rendered):
    for c in rendered["containerDefinitions"]:
        for s in c.get("secrets", []):
            assert value_from_ok(s["valueFrom"]), s
        # No DB password through ECS secrets: they go stale after RDS rotation.
        for s in c.get("secrets", []):
            assert "DB" not in s["name"] and "PASSWORD" not in s["name"], s


def test_collector_sidecar(rendered):
    (col,) = [c for c in rendered["containerDefinitions"] if c["name"] == "aws-otel-collector"]
    assert re.fullmatch(r"public\.ecr\.aws/aws-observability/aws-otel-collector:v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", col["image"])
    assert col["essential"] is False, "tracing must not take the API down"
    assert any(a.startswith("--config=") for a in col["command"])
    app = app_container(rendered)
    assert {"containerName": "aws-otel-collector", "condition": "START"} in app["dependsOn"]
    assert col["logConfiguration"]["options"]["awslogs-stream-prefix"] != app["logConfiguration"]["options"]["awslogs-stream-prefix"]
