"""--resume: after a killed run, after a cut-off last line, for CSV output; never a duplicate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import FIXTURES, many_replies, rows, score


def _keys(path):
    return [(r["file"], r["index"]) for r in rows(path)]


def test_resume_after_a_killed_run_scores_the_rest_without_duplicates(tmp_path):
    src = many_replies(tmp_path / "in.jsonl", 6000)
    ref = tmp_path / "ref.jsonl"
    assert score(src, "-o", ref, "-j", "1", "-q") == 0
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "replyguard.batch", "score", str(src), "-o", str(out), "-j", "1",
           "--batch-size", "50", "-q"]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.stat().st_size > 100_000:  # some hundreds of rows written
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            pytest.fail(f"the run ended (status {proc.returncode}) before it could be killed")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = len(out.read_bytes().splitlines())
    assert 0 < partial < 6000
    assert score(src, "-o", out, "-j", "1", "-q", "--resume") == 0
    got = _keys(out)
    assert len(got) == len(set(got)) == 6000
    assert rows(out) == rows(ref)


def test_resume_cuts_a_partial_last_line_and_reports_the_skipped(tmp_path, capsys):
    src = many_replies(tmp_path / "in.jsonl", 200)
    ref = tmp_path / "ref.jsonl"
    assert score(src, "-o", ref, "-j", "1", "-q") == 0
    lines = ref.read_text().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    out.write_text("".join(lines[:77]) + lines[77][:40])  # killed in the middle of a write
    assert score(src, "-o", out, "-j", "1", "--resume", "--json") == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["read"], s["skipped"], s["scored"], s["rejected"]) == (200, 77, 123, 0)
    assert out.read_text() == ref.read_text()


def test_resume_counts_earlier_rejects_and_never_repeats_them(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    inputs = [FIXTURES / "broken.jsonl", FIXTURES / "replies.jsonl"]
    assert score(*inputs, "-o", out, "-j", "1", "--max-rejects", "4", "-q") == 1
    assert len(rows(tmp_path / "out.rejects.jsonl")) == 5
    assert score(*inputs, "-o", out, "-j", "1", "--resume", "--json") == 1  # rejects exist: status 1
    s = json.loads(capsys.readouterr().out)
    assert (s["skipped"], s["previously_rejected"], s["rejected"], s["scored"]) == (5, 5, 6, 12)
    assert s["read"] == s["skipped"] + s["scored"] + s["rejected"] == 23
    rej = _keys(tmp_path / "out.rejects.jsonl")
    assert len(rej) == len(set(rej)) == 11
    assert score(*inputs, "-o", out, "-j", "1", "--resume", "--json") == 1  # nothing left to do
    s = json.loads(capsys.readouterr().out)
    assert (s["skipped"], s["scored"], s["rejected"]) == (23, 0, 0)


def test_resume_csv_output_with_a_cut_quoted_field(tmp_path):
    src = tmp_path / "in.jsonl"
    with open(src, "w") as fh:
        for i in range(40):
            fh.write(json.dumps({"id": f'id "{i}",\nsecond line', "text": "STOP" if i % 3 else "Tuesday works"}) + "\n")
    ref = tmp_path / "ref.csv"
    assert score(src, "-o", ref, "-j", "1", "-q") == 0
    text = ref.read_text()
    cut = text.index('id ""25""')
    out = tmp_path / "out.csv"
    # killed right after the newline inside a quoted id: every line is whole, the last row is not
    out.write_text(text[: text.index("\n", cut) + 1])
    assert score(src, "-o", out, "-j", "1", "-q", "--resume") == 0
    assert out.read_text() == text


def test_resume_refuses_an_output_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text('{"something": "else"}\n')
    assert score(FIXTURES / "replies.jsonl", "-o", out, "-j", "1", "--resume") == 2
    assert "cannot resume" in capsys.readouterr().err
