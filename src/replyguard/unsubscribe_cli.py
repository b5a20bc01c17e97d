"""The ``replyguard serve`` command: run the unsubscribe endpoint over a ledger.

``add_parser(subparsers)`` adds the command; ``run(args) -> int`` runs it (0 ok,
1 failure, 2 bad usage or input)::

    REPLYGUARD_UNSUBSCRIBE_KEYS="2026a:<secret>,2026b:<newer secret>" \\
        replyguard serve --ledger replyguard-ledger.sqlite --host 127.0.0.1 --port 8025

Keys come from ``--keys-file PATH`` (``key_id:secret`` lines, newest last) or
the ``REPLYGUARD_UNSUBSCRIBE_KEYS`` environment variable (``kid1:secret1,kid2:secret2``,
newest last). They are never taken on the command line, where ``ps`` would show them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]

_DEFAULT_LEDGER = "replyguard-ledger.sqlite"


def _port(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number (0-65535)") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"port {n} is outside 0-65535")
    return n


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to ``subparsers`` (what ``ArgumentParser.add_subparsers()`` returned).

    Examples
    --------
    >>> ap = argparse.ArgumentParser(prog="replyguard")
    >>> _ = add_parser(ap.add_subparsers(dest="command"))
    >>> args = ap.parse_args(["serve", "--ledger", "l.sqlite", "--port", "8025"])
    >>> args.command, args.ledger, args.host, args.port, args.validity_days
    ('serve', 'l.sqlite', '127.0.0.1', 8025, 60)
    """
    p = subparsers.add_parser(
        "serve", help="serve the one-click unsubscribe endpoint (RFC 8058) over the opt-out ledger",
        description="Serve the unsubscribe endpoint. Keys: --keys-file or REPLYGUARD_UNSUBSCRIBE_KEYS "
                    "('kid1:secret1,kid2:secret2', newest last). Put an HTTPS reverse proxy in front.")
    p.add_argument("--ledger", default=_DEFAULT_LEDGER, metavar="PATH_OR_URL",
                   help=f"the opt-out ledger (default: {_DEFAULT_LEDGER})")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8025, help="port to bind; 0 picks a free one (default: 8025)")
    p.add_argument("--keys-file", metavar="PATH",
                   help="file of key_id:secret lines, newest last (default: $REPLYGUARD_UNSUBSCRIBE_KEYS)")
    p.add_argument("--validity-days", type=int, default=60, help="how long links work (default 60; at least 30)")
    p.add_argument("--max-body", type=int, default=4096, help="largest request body in bytes (default 4096)")
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``serve`` until interrupted; 0 on a clean stop, 2 for bad keys or options."""
    from .errors import ReplyGuardError
    from .unsubscribe import KeyRing, check_validity, serve

    try:
        keys = KeyRing.from_file(args.keys_file) if args.keys_file else KeyRing.from_env()
        check_validity(args.validity_days)
    except (ReplyGuardError, OSError, ValueError) as exc:
        print(f"replyguard serve: error: {exc}", file=sys.stderr)
        return 2
    try:
        serve(args.ledger, host=args.host, port=args.port, keys=keys, max_body=args.max_body,
              validity=args.validity_days, quiet=args.quiet)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
    except OSError as exc:  # the port is taken, the address is not ours
        print(f"replyguard serve: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
