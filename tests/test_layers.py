"""The layers of the package, as setup.cfg's import-linter contracts draw them, hold; and the contracts bite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """Run lint-imports with the repository's contracts on the pix2color package found in ``package_parent``."""
    env = os.environ | {"PYTHONPATH": str(package_parent)}
    command = [str(LINT_IMPORTS), str(ROOT / "setup.cfg"), "--no-cache"]
    return subprocess.run(command, capture_output=True, text=True, cwd=package_parent, env=env, timeout=120)


def test_every_contract_is_kept():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_inference_importing_training_breaks_the_contracts(tmp_path):
    """A probe: a copy of the package whose inference imports training must fail lint-imports, naming the import."""
    shutil.copytree(ROOT / "pix2color", tmp_path / "pix2color", ignore=shutil.ignore_patterns("__pycache__"))
    inference = tmp_path / "pix2color" / "inference.py"
    inference.write_text(inference.read_text() + "\nimport pix2color.training.loop  # the probe\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1
    assert "Inference never imports training or serving BROKEN" in done.stdout
    assert "pix2color.inference -> pix2color.training.loop" in done.stdout
