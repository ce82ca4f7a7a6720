"""Browser journeys through `players-api dev` logging in at a certified OpenID Connect provider
(tests/oidc-provider: `oidc-provider`, installed by scripts/oidc-provider-deps.sh) with its
Cognito- and Okta-shaped claim profiles: the provider's own login page, /v1/me, create and read,
a viewer's refused write, logout through the provider's end-session page, and the login asked
again. The same journeys over plain HTTP are tests/integration/oidc_provider_journeys.rs."""

from __future__ import annotations

import json
import subprocess
import urllib.parse

import pytest

from harness import ROOT, Browser, DevServer

PROVIDER_DIR = ROOT / "tests" / "oidc-provider"
BROWSER_CLIENT, BROWSER_SECRET = "players-browser", "browser-secret"
MACHINE_CLIENT = "players-machine"
PLAYER = {"name": "Ada Hegerberg", "date_of_birth": "1995-07-10", "country": "NOR",
          "team": "Lyon", "position": "forward"}

PROFILES = {
    # service.yaml's layout: groups from the access token (ALB_GROUPS_SOURCE at its default).
    "cognito": ({"BEARER_CLIENT_IDS": MACHINE_CLIENT}, "openid email"),
    "okta": ({"ALB_GROUPS_SOURCE": "userinfo", "AUTH_GROUPS_CLAIM": "groups",
              "BEARER_AUDIENCES": "api://players"}, "openid email profile groups"),
}


@pytest.fixture(params=sorted(PROFILES))
def provider(request):
    assert (PROVIDER_DIR / "node_modules" / "oidc-provider").exists(), \
        "the test OIDC provider is not installed: run ./scripts/oidc-provider-deps.sh"
    proc = subprocess.Popen(
        ["node", "server.js", "--profile", request.param, "--port", "0"], cwd=PROVIDER_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "BROWSER_CLIENT_ID": BROWSER_CLIENT,
             "BROWSER_CLIENT_SECRET": BROWSER_SECRET, "MACHINE_CLIENT_ID": MACHINE_CLIENT},
    )
    line = proc.stdout.readline()
    assert line, "the provider did not start"
    yield request.param, json.loads(line)["issuer"]
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def oidc_dev(tmp_path, provider):
    profile, issuer = provider
    env, scope = PROFILES[profile]
    server = DevServer(
        tmp_path,
        extra_args=["--oidc-issuer", issuer, "--oidc-client-id", BROWSER_CLIENT, "--oidc-scope", scope],
        env={"DEV_OIDC_CLIENT_SECRET": BROWSER_SECRET, **env},
    ).start()
    yield server, issuer
    server.stop()


@pytest.fixture
def open_browser(request):
    opened: list[Browser] = []

    def make(name: str) -> Browser:
        b = Browser(name=f"{request.node.name}-{name}")
        opened.append(b)
        return b

    yield make
    for b in opened:
        b.quit()


def path_of(b: Browser) -> str:
    return urllib.parse.urlsplit(b.driver.current_url).path


def login_at_provider(b: Browser, dev: DevServer, issuer: str, user: str, start: str = "/v1/me"):
    b.get(f"{dev.base}{start}")
    b.wait_css("input[name=login]")
    assert b.driver.current_url.startswith(issuer), b.driver.current_url
    b.set_value("input[name=login]", user)
    b.set_value("input[name=password]", "any")
    b.find("button[type=submit]").click()
    b.wait(lambda d: path_of(b) == start and d.current_url.startswith(dev.base), what=f"landing on {start}")


def me(b: Browser, dev: DevServer) -> dict:
    b.get(f"{dev.base}/v1/me")
    return json.loads(b.find("body").text)


def fetch(b: Browser, method: str, path: str, body: dict | None = None) -> int:
    return b.driver.execute_async_script(
        "const [m, p, body, done] = arguments;"
        "fetch(p, {method: m, headers: {'content-type': 'application/json'},"
        " body: body === null ? undefined : JSON.stringify(body)}).then(r => done(r.status), e => done(String(e)));",
        method, path, body)


def test_browser_journeys_against_the_provider(oidc_dev, open_browser):
    dev, issuer = oidc_dev

    editor = open_browser("editor")
    login_at_provider(editor, dev, issuer, "editor")
    who = json.loads(editor.find("body").text)
    assert who["groups"] == ["players-editor"], who
    assert who["permissions"] == ["players:read", "players:write", "players:delete"], who
    assert fetch(editor, "POST", "/v1/players", PLAYER) == 201
    assert fetch(editor, "GET", "/v1/players?team=Lyon", None) == 200

    viewer = open_browser("viewer")
    login_at_provider(viewer, dev, issuer, "viewer")
    assert me(viewer, dev)["permissions"] == ["players:read"]
    assert fetch(viewer, "GET", "/v1/players", None) == 200
    assert fetch(viewer, "POST", "/v1/players", PLAYER) == 403

    # Logout: the shards go, the provider's end-session page, the public signed-out page.
    editor.get(f"{dev.base}/logout")
    editor.wait_css("button[name=logout]")
    assert editor.driver.current_url.startswith(issuer)
    editor.find("button[name=logout]").click()
    editor.wait(lambda d: path_of(editor) == "/logged-out", what="the signed-out page")
    editor.driver.get(dev.base + "/logged-out")
    assert not [c for c in editor.driver.get_cookies() if c["name"].startswith("AWSELBAuthSessionCookie")]
    # A second visit asks for the login again.
    editor.get(f"{dev.base}/v1/me")
    editor.wait_css("input[name=login]")
    assert editor.driver.current_url.startswith(issuer)
