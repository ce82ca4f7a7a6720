"""The import-direction check (scripts/check-layers.py) holds for src/ and catches a planted
upward import, so the layering cannot silently erode."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check-layers.py"


def run_check(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(src)], capture_output=True, text=True, check=False
    )


def test_src_imports_point_down() -> None:
    result = run_check(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every import points down" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        # The domain at the bottom may not reach the error type (which pulls in actix).
        ("domain/player.rs", "use crate::error::ApiError;\n", "domain (layer 0) imports error"),
        # Identity may not reach the HTTP handlers, not even inside a use group.
        ("auth/principal.rs", "use crate::{domain::Actor, routes::ROUTES};\n", "auth (layer 3) imports routes"),
        # Configuration may not reach telemetry (its peer the other way round is allowed).
        ("config.rs", "pub type T = crate::telemetry::RequestIds;\n", "config (layer 1) imports telemetry"),
        # Telemetry may not reach identity.
        ("telemetry/mod.rs", "pub type P = crate::auth::Principal;\n", "telemetry (layer 1) imports auth"),
    ],
)
def test_a_planted_upward_import_fails(tmp_path: Path, module: str, planted: str, expected: str) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src)
    target = src / module
    target.write_text(target.read_text() + "\n" + planted)
    result = run_check(src)
    assert result.returncode == 1, result.stdout
    assert expected in result.stdout, result.stdout


def test_a_new_top_level_module_needs_a_layer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src)
    (src / "newcomer.rs").write_text("pub fn f() {}\n")
    result = run_check(src)
    assert result.returncode == 1
    assert "'newcomer' has no layer" in result.stdout
