"""The dask engine on a real dask.distributed LocalCluster (2 worker processes)."""

from __future__ import annotations

import json

import pytest

from replyguard.batch import read_parts, score_files

from .conftest import FIXTURES, many_replies, rows, score

distributed = pytest.importorskip("distributed")

INPUTS = [FIXTURES / "replies.jsonl", FIXTURES / "replies.jsonl.gz", FIXTURES / "archive.mbox", FIXTURES / "eml",
          FIXTURES / "broken.jsonl"]


@pytest.fixture(scope="module")
def scheduler():
    """One local cluster for the module, reached by its address as a remote one would be."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": ":0"}) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    d = tmp_path_factory.mktemp("single")
    assert score(*INPUTS, "-o", d / "v.jsonl", "-j", "1", "-q") == 1
    return rows(d / "v.jsonl"), rows(d / "v.rejects.jsonl")


def _rejects(folder):
    m = json.loads((folder / "manifest.json").read_text())
    out = []
    for p in m["parts"]:
        if p["rejects"]:
            out.extend(rows(folder / p["rejects"]))
    return out


def test_dask_cluster_output_equals_the_single_process_output(tmp_path, scheduler, single, capsys):
    out = tmp_path / "parts"
    assert score(*INPUTS, "-o", out, "--engine", "dask", "--scheduler", scheduler, "--batch-size", "4",
                 "--json") == 1
    s = json.loads(capsys.readouterr().out)
    assert read_parts(out) == single[0]
    assert _rejects(out) == single[1]
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] is True and m["format"] == "jsonl"
    # partitioned by file and by chunks: no part spans two inputs, big files give several parts
    assert len(m["parts"]) == 3 + 3 + 2 + 2 + 3
    assert all(p["read"] <= 4 for p in m["parts"])
    assert m["totals"]["read"] == s["read"] == 12 + 12 + 6 + 5 + 11
    assert m["totals"]["scored"] + m["totals"]["rejected"] == m["totals"]["read"]
    assert s["engine"] == "dask" and s["jobs"] == 2


def test_dask_resume_scores_only_the_missing_parts(tmp_path, scheduler, single, capsys):
    out = tmp_path / "parts"
    args = [*INPUTS, "-o", out, "--engine", "dask", "--scheduler", scheduler, "--batch-size", "5", "-q"]
    assert score(*args) == 1
    m = json.loads((out / "manifest.json").read_text())
    # as if the run had been killed after 4 parts
    lost = m["parts"][4:]
    for p in lost:
        (out / p["name"]).unlink()
    m["parts"] = m["parts"][:4]
    m["complete"] = False
    (out / "manifest.json").write_text(json.dumps(m))
    assert score(*args[:-1], "--resume", "--json") == 1
    s = json.loads(capsys.readouterr().out)
    assert s["skipped"] == sum(p["read"] for p in m["parts"])
    assert s["scored"] + s["rejected"] == sum(p["read"] for p in lost)
    assert read_parts(out) == single[0]
    assert score(*args) == 2  # not empty, no --resume: refuses
    assert "--resume" in capsys.readouterr().err


def test_dask_resume_refuses_other_inputs(tmp_path, scheduler, capsys):
    out = tmp_path / "parts"
    assert score(FIXTURES / "replies.jsonl", "-o", out, "--engine", "dask", "--scheduler", scheduler, "-q") == 0
    assert score(FIXTURES / "archive.mbox", "-o", out, "--engine", "dask", "--scheduler", scheduler,
                 "--resume") == 2
    assert "other inputs" in capsys.readouterr().err


def test_dask_csv_parts_and_the_ledger_through_the_api(tmp_path, scheduler):
    calls = []

    class Ledger:
        def record_reply(self, contact_id, verdict, *, message_id):
            calls.append((contact_id, message_id, verdict.intent.value))

    s = score_files(FIXTURES / "replies.csv", tmp_path / "parts", format="csv", text_column="body",
                    engine="dask", scheduler=scheduler, batch_size=2, ledger=Ledger(), contact_field="contact")
    assert (s.scored, s.rejected, s.ledger_recorded) == (6, 0, 6)
    assert [c[0] for c in calls][:2] == ["ana@example.com", "ben@example.com"]
    got = read_parts(tmp_path / "parts")
    assert [r["id"] for r in got] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert got[0]["do_not_email"] == "true"


def test_dask_local_cluster_started_by_the_command(tmp_path, single):
    src = many_replies(tmp_path / "in.jsonl", 400)
    assert score(src, "-o", tmp_path / "ref.jsonl", "-j", "1", "-q") == 0
    assert score(src, "-o", tmp_path / "parts", "--engine", "dask", "-j", "2", "--batch-size", "100", "-q") == 0
    assert read_parts(tmp_path / "parts") == rows(tmp_path / "ref.jsonl")
    assert len(json.loads((tmp_path / "parts" / "manifest.json").read_text())["parts"]) == 4


def test_unreachable_scheduler_exits_1_naming_the_address(tmp_path, capsys):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        status = score(FIXTURES / "replies.jsonl", "-o", tmp_path / "parts", "--engine", "dask", "--scheduler",
                       "tcp://127.0.0.1:9", "-q")
    assert status == 1
    assert "tcp://127.0.0.1:9" in capsys.readouterr().err
