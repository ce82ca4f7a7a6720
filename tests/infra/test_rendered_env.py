"""The service's environment exactly as `service.yaml` renders it for a Cognito deployment.

`tests/fixtures/service-env-cognito.json` is that rendering with placeholders for the values
only a real deployment has (`{{import:IssuerUrl}}`, `{{ref:LoadBalancer}}`, ...). The Rust
tests start the real `serve` binary from this file (tests/integration/production_shape.rs), replacing the
placeholders with their stand-ins, so they configure the service the way the template does.
This test keeps the file and the template in step: change one, and it fails until the other
follows (`UPDATE_FIXTURES=1` rewrites the file).
"""

from __future__ import annotations

import json
import os
import re

from conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "service-env-cognito.json"


def render(value, conditions: dict[str, bool]):
    """Evaluates the intrinsic functions the container environment uses."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::If":
            cond, yes, no = arg
            return render(yes if conditions[cond] else no, conditions)
        if fn == "Ref":
            return "{{ref:%s}}" % arg
        if fn == "Fn::ImportValue":
            name = render(arg, conditions)
            return "{{import:%s}}" % name.removeprefix("{{ref:EnvironmentName}}-")
        if fn == "Fn::Join":
            sep, items = arg
            if isinstance(items, dict):  # a list parameter
                return render(items, conditions)
            return sep.join(render(i, conditions) for i in items)
        if fn == "Fn::Sub":
            assert isinstance(arg, str), arg
            return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: "{{ref:%s}}" % m.group(1), arg)
    raise AssertionError(f"unexpected value in the container environment: {value!r}")


def rendered_env(templates, use_cognito: bool) -> dict[str, str]:
    resources = templates["service"]["Resources"]
    service = next(r for r in resources.values() if r["Type"] == "AWS::ECS::Service")
    task = resources[service["Properties"]["TaskDefinition"]["Ref"]]
    container = next(
        c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == "players-api"
    )
    # The production shape: Cognito, the service logging in as the runtime role.
    conditions = {"UseCognito": use_cognito, "ServiceAsOwner": False}
    return {e["Name"]: render(e["Value"], conditions) for e in container["Environment"]}


def test_fixture_is_the_cognito_rendering_of_service_yaml(templates):
    env = rendered_env(templates, use_cognito=True)
    if os.environ.get("UPDATE_FIXTURES"):
        FIXTURE.write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")
    assert json.loads(FIXTURE.read_text()) == env, (
        "service.yaml's environment changed: rerun with UPDATE_FIXTURES=1 and check "
        "tests/integration/production_shape.rs still describes the deployment"
    )


def test_cognito_browser_and_machine_clients_are_distinct(templates):
    env = rendered_env(templates, use_cognito=True)
    assert env["ALB_CLIENT_ID"] == "{{ref:BrowserClientId}}"
    assert env["BEARER_CLIENT_IDS"] == "{{ref:BearerClientIds}}"
    assert env["ALB_ISSUER"] == env["BEARER_ISSUER"] == "{{ref:IssuerUrl}}"
    # The identity stack has a browser client and a separate machine client...
    clients = {
        name: r["Properties"]
        for name, r in templates["identity"]["Resources"].items()
        if r["Type"] == "AWS::Cognito::UserPoolClient"
    }
    assert len(clients) >= 2, clients
    # ...and the runbook passes the browser client as BrowserClientId and only the machine
    # client(s) as BearerClientIds.
    runbook = (ROOT / "docs" / "deploy.md").read_text()
    assert re.search(r"BrowserClientId=\$\(out \S+ BrowserClientId\)", runbook)
    bearer = re.findall(r"BearerClientIds=\$\(out \S+ (\w+)\)", runbook)
    assert bearer and set(bearer) == {"MachineClientId"}, bearer
    # Groups come from the access token by default: Cognito's userinfo has none.
    assert "ALB_GROUPS_SOURCE" not in env or env["ALB_GROUPS_SOURCE"] in ("both", "accesstoken")


def test_keep_alive_outlasts_the_alb_idle_timeout(templates):
    """The target must keep idle connections open longer than the ALB does, or the ALB reuses
    one the task is closing and answers 502."""
    source = (ROOT / "src" / "config.rs").read_text()
    default = int(re.search(r"pub const DEFAULT_KEEP_ALIVE_SECS: u64 = (\d+);", source).group(1))
    env = rendered_env(templates, use_cognito=True)
    keep_alive = int(env.get("HTTP_KEEP_ALIVE_SECS", default))
    balancers = [
        r
        for r in templates["service"]["Resources"].values()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    ]
    assert balancers
    for lb in balancers:
        attributes = {
            a["Key"]: a["Value"] for a in lb["Properties"].get("LoadBalancerAttributes", [])
        }
        idle = int(attributes.get("idle_timeout.timeout_seconds", 60))  # AWS's default is 60
        assert keep_alive > idle, f"keep-alive {keep_alive} s must exceed the ALB's {idle} s"
