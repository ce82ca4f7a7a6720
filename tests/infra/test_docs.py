"""The documentation names every setting the binary reads: each `env = "NAME"` in src/ appears
in the README's configuration table, docs/configuration.md (`dev` and `migrate`) or
docs/local-alb.md (the local ALB's OIDC settings), so a new variable cannot ship undocumented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def variables_read() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "src").rglob("*.rs"):
        names |= set(re.findall(r'env\s*=\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
    return names


def test_every_variable_the_binary_reads_is_documented() -> None:
    docs = "".join(
        (ROOT / name).read_text()
        for name in ("README.md", "docs/configuration.md", "docs/local-alb.md")
    )
    names = variables_read()
    assert len(names) > 40, "the scan found the settings"
    missing = sorted(n for n in names if f"`{n}`" not in docs)
    assert not missing, f"not in README.md, docs/configuration.md or docs/local-alb.md: {missing}"


def test_the_readme_stays_a_front_door() -> None:
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024
