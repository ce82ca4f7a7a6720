"""The local ALB of `players-api dev` configures the service with the same client layout as the
templates: one issuer for browser users and services, the browser client only in ALB_CLIENT_ID,
only machine clients in BEARER_CLIENT_IDS, groups from the access token (ALB_GROUPS_SOURCE left at
its default), the same session cookie and scope as the listener's login action.

The dev side comes from the binary itself (`players-api dev --print-identity-env`, built by
cargo when needed), so a change to the stand-in that drifts from the templates fails here."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT, resources_of_type

IDENTITY_PREFIXES = ("ALB_", "BEARER_", "AUTH_")
# Set by the stand-in but not by the templates, each for a reason that only holds locally.
DEV_ONLY = {
    # The real ALB's key endpoint follows from the ARN's region; the stand-in serves its own.
    "ALB_KEY_ENDPOINT",
    # Cognito's JWKS is at the default {issuer}/.well-known/jwks.json; other providers say where.
    "BEARER_JWKS_URL",
    # The templates use the default name (checked against the listener below).
    "AUTH_SESSION_COOKIE_NAME",
}


def app_environment(templates) -> dict[str, object]:
    """The environment of the task definition the ECS service runs (not the migration task's)."""
    resources = templates["service"]["Resources"]
    (service,) = resources_of_type(templates["service"], "AWS::ECS::Service").values()
    td = resources[service["Properties"]["TaskDefinition"]["Ref"]]
    (app,) = [c for c in td["Properties"]["ContainerDefinitions"] if c["Name"] == "players-api"]
    return {e["Name"]: e["Value"] for e in app["Environment"]}


def branch(value, cognito: bool):
    """The value for one side of `!If [UseCognito, a, b]` (or the value itself)."""
    if isinstance(value, dict) and "Fn::If" in value:
        cond, when_cognito, otherwise = value["Fn::If"]
        assert cond == "UseCognito", value
        return when_cognito if cognito else otherwise
    return value


def source(value) -> str:
    """What a template value refers to: an identity-stack export name or a parameter."""
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        sub = value["Fn::ImportValue"]["Fn::Sub"]
        return "export:" + sub.split("}-", 1)[1]
    if isinstance(value, dict) and "Ref" in value:
        return "param:" + value["Ref"]
    if isinstance(value, dict) and "Fn::Join" in value:  # a list parameter, joined with commas
        return source(value["Fn::Join"][1])
    return "literal:" + json.dumps(value)


def listener_actions(templates) -> dict[str, dict]:
    (listener,) = [
        r for r in resources_of_type(templates["service"], "AWS::ElasticLoadBalancingV2::Listener").values()
        if r["Properties"].get("Protocol") == "HTTPS"
    ]
    out = {}
    for action in listener["Properties"]["DefaultActions"]:
        for side in (True, False):
            a = branch(action, side)
            if a.get("Type") == "authenticate-cognito":
                out["cognito"] = a["AuthenticateCognitoConfig"]
            if a.get("Type") == "authenticate-oidc":
                out["oidc"] = a["AuthenticateOidcConfig"]
    return out


@pytest.fixture(scope="module")
def dev_layout() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(IDENTITY_PREFIXES) and not k.startswith("DEV_")}
    out = subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "--bin", "players-api", "--",
         "dev", "--alb-port", "0", "--listen-addr", "127.0.0.1:0", "--print-identity-env"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dev_sets_the_identity_variables_the_templates_set(templates, dev_layout):
    deployed = {k for k in app_environment(templates) if k.startswith(IDENTITY_PREFIXES)}
    dev = set(dev_layout["env"])
    assert deployed - dev == set(), f"the templates set, dev does not: {sorted(deployed - dev)}"
    assert dev - deployed <= DEV_ONLY, f"dev sets, the templates do not: {sorted(dev - deployed - DEV_ONLY)}"


@pytest.mark.parametrize("cognito", [True, False], ids=["cognito", "generic-oidc"])
def test_one_issuer_for_browser_users_and_services(templates, dev_layout, cognito):
    env = app_environment(templates)
    assert source(branch(env["ALB_ISSUER"], cognito)) == source(branch(env["BEARER_ISSUER"], cognito))
    dev = dev_layout["env"]
    assert dev["ALB_ISSUER"] == dev["BEARER_ISSUER"]


@pytest.mark.parametrize("cognito", [True, False], ids=["cognito", "generic-oidc"])
def test_browser_client_is_not_a_bearer_client(templates, dev_layout, cognito):
    env = app_environment(templates)
    browser = source(branch(env["ALB_CLIENT_ID"], cognito))
    machines = source(branch(env["BEARER_CLIENT_IDS"], cognito))
    assert browser != machines
    # The runbook fills these from the identity stack's BrowserClientId and MachineClientId
    # outputs (checked in test_rendered_env.py).
    assert (browser, machines) == ("param:BrowserClientId", "param:BearerClientIds")
    dev = dev_layout["env"]
    bearer = dev["BEARER_CLIENT_IDS"].split(",")
    assert dev["ALB_CLIENT_ID"] not in bearer
    assert bearer == dev_layout["service_client_ids"] and bearer


def test_identity_stack_clients_have_the_dev_roles(templates, dev_layout):
    clients = resources_of_type(templates["identity"], "AWS::Cognito::UserPoolClient")
    browser = clients["BrowserClient"]["Properties"]
    machine = clients["MachineClient"]["Properties"]
    assert browser["AllowedOAuthFlows"] == ["code"] and browser.get("GenerateSecret") is True
    assert machine["AllowedOAuthFlows"] == ["client_credentials"]
    # Dev: the browser logs in with the authorisation code at its own callback.
    assert dev_layout["callback_url"].endswith("/oauth2/idpresponse")


def test_groups_come_from_the_access_token_in_both(templates, dev_layout):
    assert "ALB_GROUPS_SOURCE" not in app_environment(templates)
    assert "ALB_GROUPS_SOURCE" not in dev_layout["env"]


def test_session_cookie_and_scope_match_the_listener(templates, dev_layout):
    actions = listener_actions(templates)
    assert actions["cognito"]["SessionCookieName"] == dev_layout["env"]["AUTH_SESSION_COOKIE_NAME"]
    assert actions["oidc"]["SessionCookieName"] == dev_layout["env"]["AUTH_SESSION_COOKIE_NAME"]
    # The built-in provider plays the Cognito pool: the same scope.
    assert actions["cognito"]["Scope"] == dev_layout["scope"]
