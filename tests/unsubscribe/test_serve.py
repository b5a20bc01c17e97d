"""``serve`` (what ``replyguard serve`` runs) and the command's parser and errors."""

from __future__ import annotations

import argparse
import threading

from replyguard.optout import ContactStatus, OptOutLedger
from replyguard.unsubscribe import ENV_VAR, serve, unsubscribe_token
from replyguard.unsubscribe_cli import add_parser, run

from .conftest import NEW, OLD, request


def test_serve_runs_the_endpoint_over_a_ledger_url(tmp_path, ring):
    path = tmp_path / "ledger.sqlite"
    started: list = []
    ready = threading.Event()

    def on_ready(server):
        started.append(server)
        ready.set()

    t = threading.Thread(target=serve, args=(f"sqlite:///{path}",),
                         kwargs={"host": "127.0.0.1", "port": 0, "keys": ring, "quiet": True, "ready": on_ready},
                         daemon=True)
    t.start()
    assert ready.wait(10)
    port = started[0].server_port
    try:
        url = f"http://127.0.0.1:{port}/{unsubscribe_token('c-9', keys=ring)}"
        assert request(url).status == 200
        assert request(url, method="POST", data=b"List-Unsubscribe=One-Click").status == 200
    finally:
        started[0].shutdown()
        t.join(10)
    assert not t.is_alive()
    with OptOutLedger(path, create=False) as ledger:  # serve closed its ledger
        assert ledger.status("c-9") is ContactStatus.UNSUBSCRIBED


def parse(argv):
    ap = argparse.ArgumentParser(prog="replyguard")
    add_parser(ap.add_subparsers(dest="command"))
    return ap.parse_args(argv)


def test_parser_defaults_and_options():
    a = parse(["serve", "--ledger", "x.sqlite", "--host", "0.0.0.0", "--port", "0", "--keys-file", "k"])
    assert (a.command, a.ledger, a.host, a.port, a.keys_file, a.validity_days, a.max_body) == (
        "serve", "x.sqlite", "0.0.0.0", 0, "k", 60, 4096)


def test_run_without_keys_is_bad_usage(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert run(parse(["serve", "--ledger", str(tmp_path / "l.sqlite")])) == 2
    assert ENV_VAR in capsys.readouterr().err
    assert not (tmp_path / "l.sqlite").exists()


def test_run_rejects_short_validity_and_bad_key_files(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(ENV_VAR, f"{OLD[0]}:{OLD[1]},{NEW[0]}:{NEW[1]}")
    assert run(parse(["serve", "--validity-days", "10"])) == 2
    assert "shorter than the minimum of 30 days" in capsys.readouterr().err
    bad = tmp_path / "keys"
    bad.write_text("k1:short\n")
    assert run(parse(["serve", "--keys-file", str(bad)])) == 2
    err = capsys.readouterr().err
    assert "has 5 bytes" in err and "short" not in err.split("has 5 bytes")[0].split("'k1'")[0]
    assert run(parse(["serve", "--keys-file", str(tmp_path / "missing")])) == 2


def test_run_reports_a_port_in_use(monkeypatch, tmp_path, capsys):
    import socket

    monkeypatch.setenv(ENV_VAR, f"{NEW[0]}:{NEW[1]}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert run(parse(["serve", "--ledger", str(tmp_path / "l.sqlite"), "--port", str(port), "--quiet"])) == 1
    assert "cannot listen" in capsys.readouterr().err
