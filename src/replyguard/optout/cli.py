"""Commands over the opt-out ledger: ``contacts``, ``outbox`` and ``compliance``.

``add_parsers(subparsers)`` adds the three command groups to the ``replyguard``
parser; ``run(args) -> int`` runs the one parsed (0 ok, 1 failure, 2 bad usage
or input). Every command takes ``--ledger PATH_OR_URL`` (default:
``replyguard-ledger.sqlite`` in the working directory). Commands that only read
never create a ledger.

::

    replyguard contacts list --status do_not_email --since 2026-01-01 [--format csv|jsonl]
    replyguard contacts show ID [--format text|json]
    replyguard contacts stop ID --by NAME --reason TEXT
    replyguard contacts mark-dne ID --source phone --by NAME [--note TEXT]
    replyguard outbox list [--state dead] [--sink NAME] [--format text|jsonl]
    replyguard outbox retry [ID ...] [--sink NAME]
    replyguard compliance report [--warn-after-days 2] [--deadline-business-days 10] [--all]
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..errors import ReplyGuardError
from .compliance import DEFAULT_DEADLINE_BUSINESS_DAYS, ComplianceRecord
from .ledger import DEFAULT_LEDGER, OptOutLedger
from .machine import ContactStatus, DneSource, MarkDoNotEmail, StopMessaging

__all__ = ["COMMANDS", "add_parsers", "run"]

#: The command groups :func:`add_parsers` adds.
COMMANDS = ("contacts", "outbox", "compliance")
_STATES = ("pending", "dead", "delivered", "superseded")


def _when(text: str) -> datetime:
    """A ``--since`` / ``--now`` value: a date (UTC midnight) or an ISO datetime with an offset."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO datetime (YYYY-MM-DDTHH:MM:SS+00:00)") from None
    if dt.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone; add one (e.g. {text}+00:00) or give a bare date (read as UTC)")
    return dt


def _statuses(values: list[str] | None) -> list[ContactStatus] | None:
    if not values:
        return None
    return [ContactStatus.parse(v.strip()) for item in values for v in item.split(",") if v.strip()]


def add_parsers(subparsers: Any) -> None:
    """Add the ``contacts``, ``outbox`` and ``compliance`` command groups to ``subparsers``.

    Parameters
    ----------
    subparsers
        The object ``ArgumentParser.add_subparsers()`` returned.

    Examples
    --------
    >>> import argparse
    >>> ap = argparse.ArgumentParser(prog="replyguard")
    >>> add_parsers(ap.add_subparsers(dest="command"))
    >>> args = ap.parse_args(["contacts", "stop", "c-1", "--by", "ana", "--reason", "asked"])
    >>> args.command, args.optout_action, args.ledger
    ('contacts', 'stop', 'replyguard-ledger.sqlite')
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ledger", default=DEFAULT_LEDGER, metavar="PATH_OR_URL",
                        help=f"SQLite file or postgresql:// URL (default: {DEFAULT_LEDGER} in the working dir)")

    def leaf(group: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        p = group.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(optout_handler=handler)
        return p

    contacts = subparsers.add_parser("contacts", help="list, show, stop or mark contacts do-not-email",
                                     description="Contacts in the opt-out ledger.")
    cg = contacts.add_subparsers(dest="optout_action", required=True, metavar="ACTION")
    p = leaf(cg, "list", _contacts_list, "list contacts by status (the Do Not Email / Unsubscribed filters)")
    p.add_argument("--status", action="append", metavar="STATUS",
                   help="active, paused, stopped, unsubscribed, do_not_email (repeat or comma-separate; default: all)")
    p.add_argument("--since", type=_when, metavar="DATE",
                   help="only contacts whose status began on or after DATE (YYYY-MM-DD is UTC midnight)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--limit", type=int)
    p = leaf(cg, "show", _contacts_show, "show a contact's status, history (audit trail) and outbox")
    p.add_argument("id")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p = leaf(cg, "stop", _contacts_stop, "stop messaging a contact (a rep's Stop Messaging)")
    p.add_argument("id")
    p.add_argument("--by", required=True, metavar="NAME", help="who stops it")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why")
    p.add_argument("--event-id", help="an id that makes the command safe to repeat")
    p = leaf(cg, "mark-dne", _contacts_mark_dne, "mark a contact do-not-email (a phone request, a rep, an import)")
    p.add_argument("id")
    p.add_argument("--source", required=True, choices=[s.value for s in DneSource])
    p.add_argument("--by", required=True, metavar="NAME", help="who records it")
    p.add_argument("--note", default="", metavar="TEXT", help="what the contact said, the call reference")
    p.add_argument("--event-id", help="an id that makes the command safe to repeat")

    outbox = subparsers.add_parser("outbox", help="list the outbox or retry its dead letters",
                                   description="Messages to connected systems (sinks and alerts).")
    og = outbox.add_subparsers(dest="optout_action", required=True, metavar="ACTION")
    p = leaf(og, "list", _outbox_list, "list outbox messages (default: pending and dead)")
    p.add_argument("--state", action="append", choices=(*_STATES, "all"),
                   help="repeatable; default: pending and dead")
    p.add_argument("--sink", metavar="NAME")
    p.add_argument("--contact", metavar="ID")
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    p.add_argument("--limit", type=int)
    p = leaf(og, "retry", _outbox_retry, "put dead letters back in line for the next delivery")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox ids (default: every dead letter)")
    p.add_argument("--sink", metavar="NAME", help="only this sink's dead letters")

    comp = subparsers.add_parser("compliance", help="report opt-outs not yet confirmed by every sink",
                                 description="When each opt-out came and when each connected system confirmed it.")
    cpg = comp.add_subparsers(dest="optout_action", required=True, metavar="ACTION")
    p = leaf(cpg, "report", _compliance_report,
             "opt-outs some sink has not confirmed, older than the warning threshold")
    p.add_argument("--warn-after-days", type=float, default=2.0,
                   help="list opt-outs older than this (default 2: the mailbox providers' rule)")
    p.add_argument("--deadline-business-days", type=int, default=DEFAULT_DEADLINE_BUSINESS_DAYS,
                   help="flag opt-outs older than this many business days (default 10: CAN-SPAM / CASL)")
    p.add_argument("--now", type=_when, help="measure ages to this time (default: now)")
    p.add_argument("--all", action="store_true", help="list every suppressed contact with its confirmations")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.add_argument("--fail-on", choices=("never", "overdue", "deadline"), default="never",
                   help="exit 1 when anything is overdue / past the deadline (for cron and CI)")


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; return the exit status (0 ok, 1 failure, 2 bad usage or input)."""
    handler = getattr(args, "optout_handler", None)
    name = " ".join(x for x in (getattr(args, "command", None), getattr(args, "optout_action", None)) if x)
    if handler is None:
        print(f"replyguard: error: choose one of: {', '.join(COMMANDS)} (with an action)", file=sys.stderr)
        return 2
    try:
        return int(handler(args))
    except BrokenPipeError:  # `... | head`
        return 0
    except (ReplyGuardError, ValueError, TypeError, FileNotFoundError, ConnectionError) as exc:
        print(f"replyguard {name}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError | TypeError | FileNotFoundError) else 1
    except Exception as exc:
        if isinstance(exc, sqlite3.Error) or type(exc).__module__.split(".")[0] == "psycopg":
            print(f"replyguard {name}: error: the ledger database failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            return 1
        raise


def _open(args: argparse.Namespace, *, create: bool = False) -> OptOutLedger:
    return OptOutLedger(args.ledger, create=create)


def _iso(d: datetime | None) -> str:
    return "" if d is None else d.isoformat()


# -- contacts ------------------------------------------------------------------------------------

def _contacts_list(args: argparse.Namespace) -> int:
    statuses = _statuses(args.status)
    with _open(args) as ledger:
        rows = ledger.contacts(status=statuses, since=args.since, limit=args.limit)
    if args.format == "jsonl":
        for c in rows:
            sys.stdout.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        return 0
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["contact_id", "status", "may_email", "since", "updated_at", "paused_until", "events"])
    for c in rows:
        w.writerow([c.contact_id, c.status.value, str(c.may_email).lower(), _iso(c.since), _iso(c.updated_at),
                    _iso(c.paused_until), c.events])
    return 0


def _contacts_show(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        contact = ledger.contact(args.id)
        history = ledger.history(args.id)
        outbox = ledger.outbox(contact_id=args.id)
    if args.format == "json":
        print(json.dumps({"contact": contact.to_dict(), "history": [h.to_dict() for h in history],
                          "outbox": [o.to_dict() for o in outbox]}, ensure_ascii=False, indent=2))
        return 0
    mark = "may email" if contact.may_email else "DO NOT EMAIL"
    print(f"contact:  {contact.contact_id}")
    print(f"status:   {contact.status.value} ({mark})" + (f" since {_iso(contact.since)}" if contact.since else
                                                          " (never seen: a new contact is active)"))
    if contact.paused_until:
        print(f"paused until: {_iso(contact.paused_until)}")
    print(f"history:  {len(history)} event(s)")
    for h in history:
        who = f" by {h.actor}" if h.actor else ""
        effects = f" [{', '.join(e.value for e in h.effects)}]" if h.effects else ""
        print(f"  #{h.seq} {_iso(h.occurred_at)} {h.event_type} ({h.kind.value}) via {h.source}{who}: "
              f"{h.previous.value} -> {h.status.value}{effects}")
        if h.reason:
            print(f"      reason: {h.reason}")
        ev = h.evidence
        if "intent" in ev:
            print(f"      evidence: intent={ev['intent']} score={ev.get('score')} "
                  f"rules={','.join(ev.get('rule_ids', [])) or '-'} message={ev.get('message_id')}")
            if ev.get("excerpt"):
                print(f"      excerpt: {ev['excerpt'][:200]!r}")
        elif ev:
            print(f"      evidence: {json.dumps(ev, ensure_ascii=False)}")
    if outbox:
        print("outbox:")
        for o in outbox:
            what = o.kind if o.alert is None else f"alert:{o.alert}"
            when = f" at {_iso(o.delivered_at)}" if o.delivered_at else ""
            err = f" last error: {o.last_error}" if o.last_error and o.state != "delivered" else ""
            print(f"  #{o.id} {o.sink} {what} event #{o.seq}: {o.state}{when} ({o.attempts} attempt(s)){err}")
    return 0


def _print_result(r: Any) -> None:
    change = f"{r.previous.value} -> {r.status.value}" if r.changed else f"{r.status.value} (unchanged)"
    print(f"{r.contact_id}: {change} (event {r.event_id}, #{r.seq})")


def _contacts_stop(args: argparse.Namespace) -> int:
    ev = StopMessaging(actor=args.by, reason=args.reason, event_id=args.event_id or "")
    with _open(args, create=True) as ledger:
        _print_result(ledger.apply(args.id, ev))
    return 0


def _contacts_mark_dne(args: argparse.Namespace) -> int:
    ev = MarkDoNotEmail(source=args.source, actor=args.by, note=args.note, event_id=args.event_id or "")
    with _open(args, create=True) as ledger:
        _print_result(ledger.apply(args.id, ev))
    return 0


# -- outbox --------------------------------------------------------------------------------------

def _outbox_list(args: argparse.Namespace) -> int:
    states: list[str] | None = args.state or ["pending", "dead"]
    if states is not None and "all" in states:
        states = None
    with _open(args) as ledger:
        items = ledger.outbox(state=states, sink=args.sink, contact_id=args.contact, limit=args.limit)
    if args.format == "jsonl":
        for o in items:
            sys.stdout.write(json.dumps(o.to_dict(), ensure_ascii=False) + "\n")
        return 0
    if not items:
        print("no outbox messages" + (f" in state {', '.join(states)}" if states else ""))
        return 0
    print(f"{'id':>6}  {'sink':16} {'what':22} {'contact':24} {'state':10} {'tries':>5}  next/done")
    for o in items:
        what = o.kind if o.alert is None else f"alert:{o.alert}"
        when = o.delivered_at or o.dead_at or o.next_attempt_at
        print(f"{o.id:>6}  {o.sink[:16]:16} {what[:22]:22} {o.contact_id[:24]:24} {o.state:10} {o.attempts:>5}  "
              f"{_iso(when)}")
        if o.last_error and o.state != "delivered":
            print(f"        last error: {o.last_error[:300]}")
    return 0


def _outbox_retry(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        res = ledger.retry(args.ids or None, sink=args.sink)
    print(f"requeued {len(res.requeued)} dead letter(s)" + (f": {', '.join(map(str, res.requeued))}" if res.requeued else ""))
    if res.superseded:
        print(f"superseded {len(res.superseded)} (their sink already has a later status): "
              f"{', '.join(map(str, res.superseded))}")
    if res.not_dead:
        print(f"not dead letters (left alone): {', '.join(map(str, res.not_dead))}", file=sys.stderr)
        return 1
    return 0


# -- compliance ----------------------------------------------------------------------------------

def _confirmations(rec: ComplianceRecord) -> str:
    return "; ".join(f"{c.sink}={_iso(c.confirmed_at) if c.confirmed_at else c.state}" for c in rec.confirmations) or "no sinks"


def _compliance_report(args: argparse.Namespace) -> int:
    if args.warn_after_days < 0 or args.deadline_business_days < 0:
        raise ValueError("--warn-after-days and --deadline-business-days must be >= 0")
    with _open(args) as ledger:
        report = ledger.compliance_report(now=args.now, warn_after=timedelta(days=args.warn_after_days),
                                          deadline_business_days=args.deadline_business_days)
        records = ledger.compliance() if args.all else []
    if args.format == "json":
        out = report.to_dict()
        if args.all:
            out["records"] = [r.to_dict() for r in records]
        print(json.dumps(out, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["contact_id", "status", "requested_at", "source", "actor", "age_hours", "business_days",
                    "missing_sinks", "past_warn_after", "past_deadline", "confirmations"])
        for o in report.overdue:
            r = o.record
            w.writerow([r.contact_id, r.status.value, _iso(r.requested_at), r.source, r.actor or "",
                        round(o.age.total_seconds() / 3600, 1), o.business_days, " ".join(r.missing_sinks),
                        str(o.past_warn_after).lower(), str(o.past_deadline).lower(), _confirmations(r)])
    else:
        n_dead = len(report.past_deadline)
        print(f"checked {report.checked} suppressed contact(s) at {_iso(report.generated_at)}: "
              f"{len(report.overdue)} not confirmed by every sink after {args.warn_after_days:g} day(s); "
              f"{n_dead} past {report.deadline_business_days} business days")
        for o in report.overdue:
            r = o.record
            flag = "PAST DEADLINE" if o.past_deadline else "overdue"
            print(f"  {flag:13} {r.contact_id} {r.status.value} requested {_iso(r.requested_at)} via {r.source} "
                  f"({o.age.total_seconds() / 86400:.1f} days, {o.business_days} business days); "
                  f"missing: {', '.join(r.missing_sinks)}")
        if args.all:
            print("all suppressed contacts:")
            for rec in records:
                print(f"  {rec.contact_id} {rec.status.value} requested {_iso(rec.requested_at)} via {rec.source}"
                      f"{' by ' + rec.actor if rec.actor else ''}: {_confirmations(rec)}")
    if args.fail_on == "overdue" and report.overdue:
        return 1
    if args.fail_on == "deadline" and report.past_deadline:
        return 1
    return 0
