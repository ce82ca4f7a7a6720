"""Logs a user in at `players-api dev`'s local ALB over plain HTTP (the authenticate-oidc flow
against its built-in provider, as a browser would follow it) and prints the `Cookie` header
that carries the ALB session.

Usage: browser_session.py ALB_BASE_URL USER"""

from __future__ import annotations

import html
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main(base: str, user: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

    def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None):
        req = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with opener.open(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as e:  # 3xx arrive here without a redirect handler
            return e.code, e.headers, e.read().decode()

    url = f"{base}/login?next=%2F"
    for _ in range(10):
        status, headers, body = fetch(url)
        if status in (301, 302, 303, 307, 308):
            url = urllib.parse.urljoin(url, headers["Location"])
            continue
        form = re.search(r'<form method="post" action="([^"]+)"', body)
        if form is None:
            raise SystemExit(f"no login form at {url} (status {status})")
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        fields["user"] = user
        action = urllib.parse.urljoin(url, html.unescape(form.group(1)))
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(action))
        status, headers, _ = fetch(action, urllib.parse.urlencode(fields).encode(),
                                   {"Origin": origin,
                                    "Content-Type": "application/x-www-form-urlencoded"})
        url = urllib.parse.urljoin(action, headers["Location"])
        break
    for _ in range(10):
        status, headers, _ = fetch(url)
        if status not in (301, 302, 303, 307, 308):
            break
        url = urllib.parse.urljoin(url, headers["Location"])
    cookies = [f"{c.name}={c.value}" for c in jar if c.name.startswith("AWSELBAuthSessionCookie")]
    if not cookies:
        raise SystemExit(f"{user} has no ALB session after the login (last status {status})")
    return "; ".join(cookies)


if __name__ == "__main__":
    print(main(sys.argv[1].rstrip("/"), sys.argv[2]))
