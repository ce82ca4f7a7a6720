#!/usr/bin/env python3
"""Fails when a module of src/ imports from a layer above it.

The layers, bottom to top (a module may use its own layer's peers only where listed):

    domain                      the player and its rules; imports nothing of the crate
    config, telemetry           settings and their errors; logs, metrics, traces, request ids
    secrets, shutdown           Secrets Manager and the credential refresher; SIGTERM handling
    store, auth                 persistence; identity (verifiers, principal, permissions)
    error                       ApiError: every failure as problem+json
    routes                      the HTTP handlers
    startup, local_alb          the application; the local ALB stand-in (a dev tool)
    app, cli, main, lib         the composition root

Usage: scripts/check-layers.py [SRC_DIR]   (exit 1 and one line per upward import)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LAYERS: list[set[str]] = [
    {"domain"},
    {"config", "telemetry"},
    {"secrets", "shutdown"},
    {"store", "auth"},
    {"error"},
    {"routes"},
    {"startup", "local_alb"},
    {"app", "cli", "main", "lib"},
]
# Same-layer imports that are allowed (importer -> imported).
PEERS = {("telemetry", "config"), ("shutdown", "telemetry")}

LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_of(path: Path, src: Path) -> str:
    rel = path.relative_to(src)
    return rel.parts[0].removesuffix(".rs")


def crate_imports(text: str) -> set[str]:
    """Top-level crate modules named by `crate::x` paths, including `use crate::{x::.., y}`."""
    text = re.sub(r"//[^\n]*", "", text)  # comments (doc comments mention paths freely)
    found = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
    for group in re.finditer(r"\bcrate::\{", text):
        depth, i, start = 1, group.end(), group.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        inner = text[start : i - 1]
        # Names at brace depth 0 of the group.
        depth, token = 0, ""
        for ch in inner + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if depth == 0 and ch == ",":
                name = re.match(r"\s*([a-z_][a-z0-9_]*)", token)
                if name:
                    found.add(name.group(1))
                token = ""
            elif depth == 0:
                token += ch
            elif not token.strip():
                token += ch
    return found


def violations(src: Path) -> list[str]:
    out = []
    for path in sorted(src.rglob("*.rs")):
        importer = module_of(path, src)
        if importer not in LEVEL:
            out.append(f"{path}: module {importer!r} has no layer in scripts/check-layers.py")
            continue
        for imported in sorted(crate_imports(path.read_text())):
            if imported == importer or imported not in LEVEL:
                continue
            lower = LEVEL[imported] < LEVEL[importer]
            top = LEVEL[importer] == len(LAYERS) - 1 == LEVEL[imported]
            if not (lower or top or (importer, imported) in PEERS):
                out.append(
                    f"{path}: {importer} (layer {LEVEL[importer]}) imports {imported} "
                    f"(layer {LEVEL[imported]})"
                )
    return out


def main() -> int:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src"
    found = violations(src)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} import(s) point up the layers (see scripts/check-layers.py)")
        return 1
    print("layers: every import points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
