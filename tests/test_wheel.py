"""The built wheel carries the model and classifies from another directory without network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


def _no_network_prefix() -> list[str]:
    """Run in a fresh network namespace (no interfaces but loopback) when the OS allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.slow
def test_installed_wheel_classifies_from_another_directory_offline(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("replyguard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("weights.npz", "features.json", "model_card.json"):
        assert f"replyguard/_model/{f}" in names
    assert "replyguard/patterns/en.jsonl" in names and "replyguard/py.typed" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import replyguard, json; v = replyguard.classify_reply('Please remove me from your list.');"
            "print(json.dumps([replyguard.__file__, v.intent.value, v.do_not_email]))")
    env = dict(os.environ, PYTHONPATH=str(target), PYTHONNOUSERSITE="1")
    out = subprocess.run([*_no_network_prefix(), sys.executable, "-c", code], cwd=elsewhere, env=env,
                         capture_output=True, text=True, check=True)
    import json

    path, intent, dne = json.loads(out.stdout.strip().splitlines()[-1])
    assert path.startswith(str(target)), path  # the wheel, not the source tree
    assert intent == "do_not_email" and dne is True
