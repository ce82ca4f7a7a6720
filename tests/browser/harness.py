"""Reusable browser-test support: a `players-api dev` process per test, headless Chromium over
WebDriver, the login step, and checks on what the browser logged.

Nothing here knows the web app's screens; tests (and other suites, e.g. journeys against a
real OIDC provider) build on these pieces:

- `DevServer`: `players-api dev` on free ports with its own SQLite file; `.base` is the local
  ALB's URL (what a browser opens), `.api` the API's own port.
- `Browser`: one Chromium with a fresh profile; `.wait(...)`, `.screenshot(name)`,
  `.console_errors()`, `.assert_clean_console(allowed=...)` (console errors, uncaught
  exceptions, CSP violations and failed loads all count), `.requests(...)` (the network log).
- `login(browser, dev, user)`: the ONE place that knows how a browser logs in.
- `ServiceClient`: client-credentials token from the local issuer and plain HTTP calls, for
  seeding data and checking results without the browser.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", ROOT / "tests" / "browser" / "artifacts"))
# The web app's path on the local ALB: the site's root, where a user who logs in lands.
APP_PATH = os.environ.get("BROWSER_APP_PATH", "/")
DEFAULT_TIMEOUT = float(os.environ.get("BROWSER_WAIT_SECS", "15"))

# Headless, as root, with no background traffic of Chromium's own.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--password-store=basic",
]


def player_api_binary() -> Path:
    explicit = os.environ.get("PLAYERS_API_BIN")
    if explicit:
        return Path(explicit)
    return ROOT / "target" / "debug" / "players-api"


def wait_until(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Polls `cond` until it returns something truthy; raises with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - polled conditions may fail until ready
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f": {last_exc}" if last_exc else ""))


class DevServer:
    """`players-api dev` on free loopback ports with a fresh SQLite database in `workdir`."""

    BANNER_ALB = re.compile(r"local ALB: open (http://127\.0\.0\.1:\d+)/")
    BANNER_API = re.compile(r"API on (http://127\.0\.0\.1:\d+)")

    def __init__(self, workdir: Path, binary: Path | None = None, extra_args: Iterable[str] = (),
                 env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.binary = binary or player_api_binary()
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.db_path = self.workdir / "players.db"
        self.log_path = self.workdir / "dev.log"
        self.proc: subprocess.Popen | None = None
        self.base = ""
        self.api = ""

    def start(self) -> "DevServer":
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} missing: build it with `cargo build --bin players-api`")
        env = {**os.environ, "LOG_LEVEL": "info", "NO_COLOR": "1", **self.env}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "dev", "--listen-addr", "127.0.0.1:0", "--alb-port", "0",
             "--database-url", f"sqlite:{self.db_path}", *self.extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
        )

        def banner():
            if self.proc.poll() is not None:
                raise RuntimeError(f"players-api dev exited with {self.proc.returncode}:\n{self.log()}")
            text = self.log()
            alb, api = self.BANNER_ALB.search(text), self.BANNER_API.search(text)
            return (alb.group(1), api.group(1)) if alb and api else None

        self.base, self.api = wait_until(banner, 30, "players-api dev to start")
        wait_until(lambda: http("GET", f"{self.base}/health")[0] == 200, 15, "the local ALB to answer /health")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def http(method: str, url: str, body=None, headers: dict[str, str] | None = None, timeout: float = 10):
    """(status, headers, parsed JSON or text) for one request; no redirects followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    data = None
    headers = dict(headers or {})
    if body is not None:
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as res:
            status, hdrs, raw = res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    text = raw.decode(errors="replace")
    ctype = hdrs.get("content-type", "")
    return status, hdrs, (json.loads(text) if "json" in ctype and text else text)


class ServiceClient:
    """A service client of the local issuer (client credentials), calling the API directly."""

    def __init__(self, dev: DevServer, client_id: str = "local-service", secret: str = "local-secret",
                 scope: str = "players/read players/write players/delete players/admin"):
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": secret, "scope": scope,
        })
        status, _, body = http("POST", f"{dev.base}/issuer/oauth2/token", form,
                               {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, (status, body)
        self.token = body["access_token"]
        self.api = dev.api

    def call(self, method: str, path: str, body=None, headers: dict[str, str] | None = None):
        return http(method, f"{self.api}{path}", body, {"Authorization": f"Bearer {self.token}", **(headers or {})})

    def create_player(self, **fields) -> dict:
        status, _, body = self.call("POST", "/v1/players", fields)
        assert status == 201, (status, body)
        return body

    def players(self, **params) -> list[dict]:
        items, cursor = [], None
        while True:
            q = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            status, _, body = self.call("GET", "/v1/players?" + urllib.parse.urlencode(q))
            assert status == 200, (status, body)
            items += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                return items


# In the page: every element with its own visible text, its contrast ratio (WCAG 2.x relative
# luminance of sRGB colours, alpha blended over the resolved background).
CONTRAST_SCRIPT = r"""
const parse = (c) => {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
};
const over = (top, bottom) => ({
  r: top.r * top.a + bottom.r * (1 - top.a),
  g: top.g * top.a + bottom.g * (1 - top.a),
  b: top.b * top.a + bottom.b * (1 - top.a),
  a: 1,
});
const background = (el) => {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const s = getComputedStyle(e);
    if (s.backgroundImage && s.backgroundImage !== "none") return null;
    const c = parse(s.backgroundColor);
    if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  let bg = { r: 255, g: 255, b: 255, a: 1 };
  for (const c of layers.reverse()) bg = over(c, bg);
  return bg;
};
const lum = (c) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const out = [];
for (const el of document.querySelectorAll("body *")) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const rect = el.getBoundingClientRect();
  const s = getComputedStyle(el);
  if (!rect.width || !rect.height || s.visibility === "hidden" || s.display === "none") continue;
  if (el.closest("[hidden], [aria-hidden=true]")) continue;
  const bg = background(el);
  const fg = parse(s.color);
  if (!bg || !fg) continue;
  const text = over({ ...fg, a: fg.a * Number(s.opacity) }, bg);
  const [hi, lo] = [lum(text), lum(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const px = parseFloat(s.fontSize);
  const large = px >= 24 || (px >= 18.66 && Number(s.fontWeight) >= 700);
  const need = large ? 3 : 4.5;
  if (ratio < need) {
    const what = el.textContent.trim().slice(0, 40);
    out.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${what}": ${ratio.toFixed(2)} < ${need} (${s.color} on rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)}))`);
  }
}
return out;
"""


@dataclass
class LogEntry:
    level: str
    source: str
    message: str

    def __str__(self):
        return f"[{self.level} {self.source}] {self.message}"


@dataclass
class Browser:
    """One headless Chromium with a fresh profile, driven over WebDriver."""

    name: str
    width: int = 1280
    height: int = 900
    artifacts: Path = ARTIFACTS
    console: list[LogEntry] = field(default_factory=list)
    network: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in CHROMIUM_ARGS:
            opts.add_argument(a)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.add_argument(f"--window-size={self.width},{self.height}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.artifacts.mkdir(parents=True, exist_ok=True)
        service = Service(executable_path=CHROMEDRIVER,
                          log_output=str(self.artifacts / f"{self.name}.chromedriver.log"))
        self.driver = webdriver.Chrome(options=opts, service=service)
        self.driver.set_page_load_timeout(30)
        if self.width < 600:
            # Chromium's windows have a minimum width; a phone's viewport is emulated instead.
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": True,
            })

    # --- navigation and waiting -------------------------------------------------------------
    def get(self, url: str):
        self.driver.get(url)

    def wait(self, cond, timeout: float = DEFAULT_TIMEOUT, what: str = "a condition"):
        """WebDriverWait on `cond(driver)`; the message names `what`. An element the app
        re-rendered between finding it and reading it (stale) is looked for again at the next
        poll, not a failure: the app replaces whole sections when data arrives."""
        return WebDriverWait(
            self.driver, timeout, poll_frequency=0.05,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(cond, message=f"waiting for {what}")

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_css(self, css: str, timeout: float = DEFAULT_TIMEOUT):
        """The first visible element matching `css`."""
        def visible(d):
            for el in d.find_elements(By.CSS_SELECTOR, css):
                if el.is_displayed():
                    return el
            return None
        return self.wait(visible, timeout, f"visible {css}")

    def wait_text(self, css: str, pattern: str, timeout: float = DEFAULT_TIMEOUT):
        """The first visible element matching `css` whose text matches the regex `pattern`."""
        rx = re.compile(pattern)

        def match(d):
            for el in d.find_elements(By.CSS_SELECTOR, css):
                if el.is_displayed() and rx.search(el.text):
                    return el
            return None
        return self.wait(match, timeout, f"{css} with text /{pattern}/")

    def wait_gone(self, css: str, timeout: float = DEFAULT_TIMEOUT):
        return self.wait(lambda d: not any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, css)),
                         timeout, f"{css} to disappear")

    def wait_url(self, pattern: str, timeout: float = DEFAULT_TIMEOUT):
        rx = re.compile(pattern)
        return self.wait(lambda d: rx.search(d.current_url), timeout, f"URL matching /{pattern}/")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def focused(self):
        return self.driver.switch_to.active_element

    def set_value(self, css: str, value: str):
        """Types into an input after clearing it (select-all + delete, as a user would)."""
        from selenium.webdriver.common.keys import Keys
        el = self.find(css)
        el.click()
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(Keys.DELETE)
        if value:
            el.send_keys(value)
        return el

    def select(self, css: str, value: str):
        from selenium.webdriver.support.ui import Select
        Select(self.find(css)).select_by_value(value)

    # --- artifacts --------------------------------------------------------------------------
    def screenshot(self, name: str, full_page: bool = False) -> Path:
        """`artifacts/<name>.png`: the viewport, or the whole page."""
        path = self.artifacts / f"{name}.png"
        if not full_page:
            self.driver.save_screenshot(str(path))
            return path
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        })
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    # --- logs ---------------------------------------------------------------------------------
    def _drain(self):
        for e in self.driver.get_log("browser"):
            self.console.append(LogEntry(e.get("level", ""), e.get("source", ""), e.get("message", "")))
        for e in self.driver.get_log("performance"):
            try:
                msg = json.loads(e["message"])["message"]
            except (KeyError, ValueError):
                continue
            if msg.get("method") == "Network.requestWillBeSent":
                self.network.append(msg["params"]["request"])

    def console_errors(self) -> list[LogEntry]:
        """Everything the browser logged as an error: console.error, uncaught exceptions and
        rejections, CSP violations, failed resource loads."""
        self._drain()
        return [e for e in self.console if e.level == "SEVERE"]

    def assert_clean_console(self, allowed: Iterable[str] = ()):
        """Fails on any console error not matched by one of the `allowed` regexes (tests that
        provoke an HTTP error on purpose allow exactly that line)."""
        rx = [re.compile(a) for a in allowed]
        bad = [e for e in self.console_errors() if not any(r.search(e.message) for r in rx)]
        assert not bad, "browser console errors:\n" + "\n".join(map(str, bad))

    def requests(self, method: str | None = None, url_pattern: str = "") -> list[dict]:
        """Requests the page sent (from Chromium's network log): `{url, method, headers}`."""
        self._drain()
        rx = re.compile(url_pattern)
        return [r for r in self.network
                if (method is None or r.get("method") == method) and rx.search(r.get("url", ""))]

    def contrast_failures(self) -> list[str]:
        """Visible text whose colour against its effective background is below WCAG 2.x AA
        (4.5:1, or 3:1 for large text: at least 24 px, or 18.66 px bold). Backgrounds are
        resolved through transparent ancestors; text over an image or gradient is skipped."""
        return self.js(CONTRAST_SCRIPT)

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def login(browser: Browser, dev: DevServer, user: str, next_path: str = APP_PATH):
    """Logs `user` in at the local ALB's login page and waits to land on `next_path`.

    The only function that knows how a browser logs in: to run the same journeys against
    another login (a real OIDC provider), change this one."""
    browser.get(f"{dev.base}/login?next={urllib.parse.quote(next_path, safe='')}")
    browser.wait_css(f"input[name=user][value={user}]").click()
    browser.find("form button[type=submit]").click()
    path = urllib.parse.urlsplit(next_path).path
    browser.wait(lambda d: urllib.parse.urlsplit(d.current_url).path == path, what=f"landing on {path}")
