"""A wheel install (not the editable checkout) finds its package data: task principles, demo data, judges."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_shows_the_task_principles_and_judges(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(REPO)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("sami_harness-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    # the dependencies (torch, pydantic, ...) come from this environment; the harness itself only from the wheel
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    def harness(*args: str) -> str:
        result = subprocess.run([str(venv / "bin" / "python"), "-m", "harness.cli", *args], cwd=outside,
                                capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
        assert result.returncode == 0, result.stderr
        return result.stdout

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import harness; print(harness.__file__)"], cwd=outside,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))
    shown = harness("principles", "show", "tldr")
    assert "task: tldr" in shown and "third_person" in shown and str(site) in shown
    assert {"local", "robust", "sami-paper"} <= {line.split()[0] for line in harness("ls", "judges").splitlines()}
