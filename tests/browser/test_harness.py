"""The harness itself: what it must catch for the app tests to mean anything."""

from __future__ import annotations

import pytest


def test_console_errors_and_csp_violations_are_reported(app_as):
    app = app_as("viewer")
    b = app.b
    # An image from elsewhere (img-src 'self') and a string into innerHTML (Trusted Types).
    b.js("const i = document.createElement('img'); i.src = 'http://192.0.2.1/x.png'; document.body.append(i);")
    refused = b.js("try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return false; }"
                   " catch (e) { return e instanceof TypeError; }")
    assert refused, "Trusted Types refuse markup strings"
    b.js("console.error('deliberate error from the harness test')")
    errors = b.wait(lambda d: (e := b.console_errors()) and len(e) >= 2 and e, what="two console errors")
    text = "\n".join(e.message for e in errors)
    assert "Content Security Policy" in text and "192.0.2.1" in text, text
    assert "deliberate error from the harness test" in text
    with pytest.raises(AssertionError, match="Content Security Policy"):
        b.assert_clean_console()
    b.allowed += ["Content Security Policy", "deliberate error", "TrustedHTML"]


def test_the_page_and_its_assets_come_with_strict_headers(dev):
    from harness import http

    status, headers, body = http("GET", f"{dev.api}/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    import re
    js = re.search(r'src="(/assets/[0-9a-f]{12}/app\.js)"', body).group(1)
    status, headers, _ = http("GET", f"{dev.api}{js}")
    assert status == 200 and "immutable" in headers["cache-control"]
    assert headers["content-type"].startswith("text/javascript")
