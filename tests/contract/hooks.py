"""schemathesis hooks for the API contract run (scripts/contract-tests.sh).

A schema says what a request may look like; it cannot say what depends on the server's state
or on today's date. Those refusals are dropped here, each for the reason written next to it,
and only when the problem document names exactly that refusal. Every other failure of every
check fails the run."""

from __future__ import annotations

import json

import schemathesis
from hypothesis.internal import lambda_sources

# CPython 3.11's ast.parse can raise SystemError ("AST constructor recursion depth mismatch",
# python/cpython#106905) when hypothesis describes a filter lambda for its repr deep in a
# recursion. The description is only a label, so a failure to produce it must not end the run.
_describe_lambda = lambda_sources._lambda_description


def _describe_lambda_or_placeholder(f):
    try:
        return _describe_lambda(f)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_lambda_or_placeholder

# Refusals of a schema-valid request that no schema can rule out, by problem `code`.
STATE_DEPENDENT = {
    # A well-formed entity tag of another version: which version is current is state.
    "precondition_failed": "If-Match names a version other than the current one",
    # Cursors are opaque: only one the server returned is valid, and any string is well formed.
    "invalid_cursor": "the cursor was not one the server returned",
}

# Field errors of a 422 that depend on more than the value's shape.
RELATIVE_RULES = {
    # JSON Schema has no "not after today" for a date.
    "in_future": "a date of birth after today",
    # A relation between two parameters (from <= to), which a schema cannot state.
    "invalid_range": "an audit window that ends before it starts",
}


def problem(response) -> dict:
    try:
        body = json.loads(response.content)
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


# An invalid request refused with a status schemathesis does not list for invalid data (its
# negative_data_rejection check, ST201). If-Match is evaluated before the body is read (RFC 9110
# section 13.2.2: preconditions come before processing the content), so an invalid patch sent
# with the If-Match of another version is refused as 412; the same patch with the current
# version is refused as 422, which the check accepts.
REFUSED_FIRST = {412: "precondition_failed"}


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep a failure unless it is a refusal for one of the reasons above."""
    if response is None:
        return True
    body = problem(response)
    if failure.code == "ST201":
        return REFUSED_FIRST.get(response.status_code) != body.get("code")
    if failure.code != "ST202":
        return True
    if body.get("code") in STATE_DEPENDENT:
        return False
    errors = body.get("errors") or []
    if response.status_code == 422 and errors and all(e.get("code") in RELATIVE_RULES for e in errors):
        return False
    return True
