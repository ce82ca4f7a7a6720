"""Fixtures of the browser tests: a fresh `players-api dev` per test, browsers that are checked
for console errors (and CSP violations) when the test ends, and a logged-in app helper."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import APP_PATH, ARTIFACTS, Browser, DevServer, ServiceClient, login  # noqa: E402


@pytest.fixture
def dev(tmp_path, request):
    server = DevServer(tmp_path).start()
    yield server
    server.stop()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(server.log_path, ARTIFACTS / f"{request.node.name}.dev.log")


@pytest.fixture
def service(dev):
    return ServiceClient(dev)


class App:
    """The web app in one browser, logged in as one user."""

    def __init__(self, browser: Browser, dev: DevServer):
        self.b = browser
        self.dev = dev

    def url(self, query: str = "") -> str:
        return f"{self.dev.base}{APP_PATH}{query}"

    def open(self, query: str = ""):
        self.b.get(self.url(query))
        self.wait_ready()

    def wait_ready(self):
        self.b.wait_css("body[data-ready=true]")

    def rows(self) -> list[str]:
        """Names in the players table, once it has loaded."""
        self.b.wait_css(".results[aria-busy=false]")
        return [el.text for el in self.b.find_all("#players tbody th a")]


@pytest.fixture
def browsers(request):
    """`open_browser(name=..., width=..., height=...)`; every browser's console must be clean
    at the end (tests that provoke an HTTP error add its line to `browser.allowed`)."""
    opened: list[Browser] = []

    def open_browser(name: str | None = None, **kw) -> Browser:
        b = Browser(name=name or f"{request.node.name}-{len(opened)}", **kw)
        b.allowed = []
        opened.append(b)
        return b

    yield open_browser
    failed = getattr(request.node, "rep_call", None)
    errors = []
    for b in opened:
        try:
            if failed is not None and failed.failed:
                b.screenshot(f"{b.name}.failure")
            b.assert_clean_console(b.allowed)
        except AssertionError as e:
            errors.append(f"{b.name}: {e}")
        finally:
            b.quit()
    assert not errors, "\n".join(errors)


@pytest.fixture
def app_as(dev, browsers):
    """`app_as("editor", width=375)` → an `App` logged in as that user."""

    def make(user: str, **kw) -> App:
        b = browsers(name=kw.pop("name", None), **kw)
        login(b, dev, user)
        app = App(b, dev)
        app.wait_ready()
        return app

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
