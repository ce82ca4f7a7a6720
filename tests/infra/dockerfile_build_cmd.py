"""Extracts the builder stage's `cargo build ...` command (or its ENV) from the Dockerfile.

Usage: python dockerfile_build_cmd.py [--env] Dockerfile
Prints the command (one line), or with --env the builder stage's ENV as NAME=VALUE lines.
Exits non-zero if the builder stage does not contain exactly one plain `cargo build` RUN.
Also imported by tests/infra/test_dockerfile.py.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

BUILDER_STAGE = "builder"


def logical_lines(text: str) -> list[str]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    out: list[str] = []
    cur = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if cur and line.startswith("#"):
            continue
        if line.endswith("\\"):
            cur += line[:-1].strip() + " "
            continue
        cur += line
        out.append(cur.strip())
        cur = ""
    if cur:
        out.append(cur.strip())
    return out


def stages(text: str) -> dict[str, list[str]]:
    """Instructions per stage name (unnamed stages get their index)."""
    result: dict[str, list[str]] = {}
    name = None
    for i, line in enumerate(logical_lines(text)):
        m = re.match(r"(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line)
        if m:
            name = (m.group(2) or str(len(result))).lower()
            result[name] = [line]
        elif name is not None:
            result[name].append(line)
    return result


def builder_build_command(text: str) -> str:
    runs = [
        line[len("RUN"):].strip()
        for line in stages(text)[BUILDER_STAGE]
        if re.match(r"(?i)^RUN\s", line)
    ]
    builds = [r for r in runs if re.match(r"^cargo\s+build\b", r)]
    if len(builds) != 1:
        raise SystemExit(f"expected exactly one `RUN cargo build ...` in the builder stage, got {builds!r}")
    cmd = builds[0]
    # Only a plain command: no shell operators, so it can run as argv.
    if re.search(r"[;&|<>`$()]", cmd):
        raise SystemExit(f"builder cargo build line is not a plain command: {cmd!r}")
    return " ".join(shlex.split(cmd))


def builder_env(text: str) -> list[str]:
    env: list[str] = []
    for line in stages(text)[BUILDER_STAGE]:
        m = re.match(r"(?i)^ENV\s+(.*)$", line)
        if not m:
            continue
        for tok in shlex.split(m.group(1)):
            if "=" not in tok:
                raise SystemExit(f"use ENV NAME=VALUE form: {line!r}")
            env.append(tok)
    return env


def main(argv: list[str]) -> int:
    want_env = "--env" in argv
    paths = [a for a in argv if a != "--env"]
    text = Path(paths[0] if paths else "Dockerfile").read_text()
    if want_env:
        print("\n".join(builder_env(text)))
    else:
        print(builder_build_command(text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
