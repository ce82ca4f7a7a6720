"""The deployment files agree with the service (src/) and with each other.

Tests marked "src" read the Rust sources. Until every part of the service is merged they FAIL
(never skip): the lead merges the branches that define the variables, routes and metrics."""

from __future__ import annotations

import json
import re

import pytest

from conftest import (
    CONTRACT_HEALTH_PATH,
    CONTRACT_PORT,
    ROOT,
    SRC,
    app_container,
    read_list,
    resources_of_type,
    rust_sources,
    src_env_vars,
)

CONTRACT_ENV = read_list("expected_env.txt")
CONTRACT_METRICS = read_list("expected_metrics.txt")
METRICS_RS = SRC / "telemetry" / "metrics" / "mod.rs"


def cfn_task_def(templates) -> dict:
    """The service's task definition (the migration task's is MigrationTaskDefinition)."""
    return templates["service"]["Resources"]["TaskDefinition"]["Properties"]


def cfn_app(templates) -> dict:
    (c,) = [c for c in cfn_task_def(templates)["ContainerDefinitions"] if c["Name"] == "players-api"]
    return c


def deployed_env_names(task_def, templates) -> set[str]:
    names = {e["name"] for c in task_def["containerDefinitions"] if c["name"] == "players-api" for e in c["environment"]}
    names |= {e["Name"] for e in cfn_app(templates)["Environment"]}
    return names


# ---------------------------------------------------------------- contract (static)

def test_deployed_env_vars_are_contract_vars(task_def, templates):
    unknown = deployed_env_names(task_def, templates) - set(CONTRACT_ENV)
    assert not unknown, f"not in the contract (tests/infra/expected_env.txt): {sorted(unknown)}"


def test_dashboard_and_alarm_metrics_are_contract_metrics(templates):
    used = service_metric_names(templates)
    assert used, "the dashboard must show the service's EMF metrics"
    assert used <= set(CONTRACT_METRICS), sorted(used - set(CONTRACT_METRICS))


# ---------------------------------------------------------------- src (fail until merged)

def test_src_reads_every_deployed_env_var(task_def, templates):
    read = src_env_vars()
    missing = sorted(deployed_env_names(task_def, templates) - read)
    assert not missing, f'set by the task definition but no `env = "NAME"` in src/**/*.rs: {missing}'


@pytest.mark.parametrize("name", CONTRACT_ENV)
def test_src_reads_contract_env_var(name):
    assert name in src_env_vars(), f'contract variable {name}: no `env = "{name}"` in src/**/*.rs'


def listen_addr_default() -> str | None:
    for path in rust_sources():
        text = path.read_text()
        for m in re.finditer(r'#\[arg\((.*?)\)\]', text, re.S):
            attr = m.group(1)
            if re.search(r'\benv\s*=\s*"LISTEN_ADDR"', attr):
                d = re.search(r'default_value(?:_t)?\s*=\s*"([^"]+)"', attr)
                if d:
                    return d.group(1)
                c = re.search(r'default_value(?:_t)?\s*=\s*([A-Z_][A-Z0-9_]*)', attr)
                if c:  # a named constant
                    for p2 in rust_sources():
                        k = re.search(rf'const\s+{c.group(1)}\s*:\s*&str\s*=\s*"([^"]+)"', p2.read_text())
                        if k:
                            return k.group(1)
    return None


def test_container_port_matches_listen_addr_default(task_def, templates):
    default = listen_addr_default()
    assert default, 'no `env = "LISTEN_ADDR"` argument with a default_value in src/**/*.rs'
    port = int(default.rsplit(":", 1)[1])
    assert port == CONTRACT_PORT
    assert app_container(task_def)["portMappings"][0]["containerPort"] == port
    assert cfn_app(templates)["PortMappings"][0]["ContainerPort"] == port


def test_health_path_is_a_service_route(templates):
    (tg,) = resources_of_type(templates["service"], "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    path = tg["Properties"]["HealthCheckPath"]
    assert path == CONTRACT_HEALTH_PATH
    src = "\n".join(p.read_text() for p in rust_sources())
    assert f'"{path}"' in src, f"no route {path!r} in src/"


def test_container_commands_exist_in_the_cli():
    """ENTRYPOINT `serve` and HEALTHCHECK `healthcheck` are clap subcommands of the binary."""
    src = "\n".join(p.read_text() for p in rust_sources())
    for cmd in ("serve", "healthcheck"):
        variant = cmd.capitalize()
        assert re.search(rf'\b{variant}\b\s*[({{,]|name\s*=\s*"{cmd}"', src), f"no `{cmd}` subcommand in src/"


def service_metric_names(templates) -> set[str]:
    obs = templates["observability"]
    defaults = {k: v.get("Default") for k, v in obs["Parameters"].items()}
    ns = defaults["MetricsNamespace"]
    (dash,) = resources_of_type(obs, "AWS::CloudWatch::Dashboard").values()
    body_tpl = dash["Properties"]["DashboardBody"]["Fn::Sub"][0]
    body = re.sub(r"\$\{([A-Za-z:]+)\}", lambda m: str(defaults.get(m.group(1), "X")), body_tpl)
    doc = json.loads(body)
    names: set[str] = set()
    for w in doc["widgets"]:
        for row in w.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):
                expr = row[0]["expression"]
                if "{" + ns + "," in expr:
                    names.update(re.findall(r'MetricName=\\?"([A-Za-z]+)\\?"', expr))
            elif row[0] == ns:
                names.add(row[1])
    for a in resources_of_type(obs, "AWS::CloudWatch::Alarm").values():
        p = a["Properties"]
        if p.get("Namespace") == {"Ref": "MetricsNamespace"}:
            names.add(p["MetricName"])
    return names


def src_metric_names() -> set[str]:
    assert METRICS_RS.is_file(), f"{METRICS_RS.relative_to(ROOT)} does not exist"
    return set(re.findall(r'pub\s+const\s+[A-Z0-9_]+\s*:\s*&(?:\'static\s+)?str\s*=\s*"([A-Za-z0-9]+)"', METRICS_RS.read_text()))


def test_dashboard_metrics_are_emitted_by_the_service(templates):
    missing = sorted(service_metric_names(templates) - src_metric_names())
    assert not missing, f"on the dashboard/alarms but not a `pub const` in src/telemetry/metrics/mod.rs: {missing}"


def test_service_emits_every_contract_metric():
    missing = sorted(set(CONTRACT_METRICS) - src_metric_names())
    assert not missing, f"contract metrics missing from src/telemetry/metrics/mod.rs: {missing}"


def test_dashboard_parses_and_has_logs_widgets(templates):
    obs = templates["observability"]
    (dash,) = resources_of_type(obs, "AWS::CloudWatch::Dashboard").values()
    body = re.sub(r"\$\{[A-Za-z:]+\}", "X", dash["Properties"]["DashboardBody"]["Fn::Sub"][0])
    doc = json.loads(body)
    titles = {w["properties"].get("title") for w in doc["widgets"]}
    assert {"Recent errors", "Auth failures by reason", "Slowest requests"} <= titles
    alb = {row[1] for w in doc["widgets"] for row in w["properties"].get("metrics", []) if row and row[0] == "AWS/ApplicationELB"}
    assert {"RequestCount", "TargetResponseTime", "HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count",
            "HealthyHostCount", "UnHealthyHostCount", "ELBAuthError", "ELBAuthFailure"} <= alb


# ---------------------------------------------------------------- CloudFormation vs ecs-task-def.json

def _env_names(c, key_list, key_name):
    return sorted(e[key_name] for e in c.get(key_list, []))


def test_cfn_task_def_agrees_with_json(task_def, templates):
    cfn = cfn_task_def(templates)
    assert cfn["Cpu"] == task_def["cpu"] and cfn["Memory"] == task_def["memory"]
    assert cfn["NetworkMode"] == task_def["networkMode"]
    assert cfn["RequiresCompatibilities"] == task_def["requiresCompatibilities"]
    assert cfn["RuntimePlatform"] == {"CpuArchitecture": task_def["runtimePlatform"]["cpuArchitecture"],
                                      "OperatingSystemFamily": task_def["runtimePlatform"]["operatingSystemFamily"]}
    assert cfn["Family"] == task_def["family"]
    json_containers = {c["name"]: c for c in task_def["containerDefinitions"]}
    cfn_containers = {c["Name"]: c for c in cfn["ContainerDefinitions"]}
    assert json_containers.keys() == cfn_containers.keys()
    for name, j in json_containers.items():
        c = cfn_containers[name]
        if name == "players-api":
            assert j["image"] == "${IMAGE_URI}" and c["Image"] == {"Ref": "ImageUri"}
        else:
            assert c["Image"] == j["image"], name
        assert c["User"] == j["user"], name
        assert c["Essential"] == j["essential"], name
        assert c["ReadonlyRootFilesystem"] == j["readonlyRootFilesystem"], name
        assert c.get("StopTimeout") == j.get("stopTimeout"), name
        assert c.get("Cpu") == j.get("cpu") and c.get("Memory") == j.get("memory"), name
        assert c.get("Command") == j.get("command"), name
        assert [(p["ContainerPort"], p["HostPort"], p["Protocol"]) for p in c.get("PortMappings", [])] == \
               [(p["containerPort"], p["hostPort"], p["protocol"]) for p in j.get("portMappings", [])], name
        hc, jhc = c["HealthCheck"], j["healthCheck"]
        assert (hc["Command"], hc["Interval"], hc["Timeout"], hc["Retries"], hc["StartPeriod"]) == \
               (jhc["command"], jhc["interval"], jhc["timeout"], jhc["retries"], jhc["startPeriod"]), name
        assert c["LinuxParameters"]["InitProcessEnabled"] == j["linuxParameters"]["initProcessEnabled"]
        assert c["LinuxParameters"]["Capabilities"]["Drop"] == j["linuxParameters"]["capabilities"]["drop"]
        assert _env_names(c, "Environment", "Name") == _env_names(j, "environment", "name"), name
        assert _env_names(c, "Secrets", "Name") == _env_names(j, "secrets", "name"), name
        copts, jopts = c["LogConfiguration"]["Options"], j["logConfiguration"]["options"]
        assert copts.keys() == jopts.keys(), name
        for k in ("awslogs-stream-prefix", "mode", "max-buffer-size"):
            assert copts[k] == jopts[k], (name, k)
    # Constant env values agree too (the rest are placeholders / stack references).
    jenv = {e["name"]: e["value"] for e in json_containers["players-api"]["environment"]}
    cenv = {e["Name"]: e["Value"] for e in cfn_containers["players-api"]["Environment"]}
    for k, v in jenv.items():
        if "${" not in v and isinstance(cenv[k], str):
            assert cenv[k] == v, k
