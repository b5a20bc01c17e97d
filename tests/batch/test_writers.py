"""Resume bookkeeping (without the classifier): partial tails are cut, rows are recognised."""

from __future__ import annotations

import json

import pytest

from replyguard.batch import BatchUsageError
from replyguard.batch.writers import OUTPUT_COLUMNS, DoneSet, _csv, csv_header, scan_done


def test_doneset_is_a_bitmap_per_file():
    d = DoneSet()
    for i in (0, 7, 8, 100_000):
        d.add("a.jsonl", i)
    d.add("a.jsonl", 7)
    assert len(d) == 4
    assert d.has("a.jsonl", 100_000) and d.has("a.jsonl", 8) and not d.has("a.jsonl", 9)
    assert not d.has("b.jsonl", 0) and not d.has("a.jsonl", 10**7)


def _row(file, index, lang="en"):
    return [f"id{index}", file, index + 1, index, "other", "false", 0.1, "false", "", lang]


def test_jsonl_scan_cuts_a_partial_line_and_reads_rejects(tmp_path):
    out, rej = tmp_path / "o.jsonl", tmp_path / "o.rejects.jsonl"
    rows = [dict(zip(OUTPUT_COLUMNS, _row("f", i), strict=True)) for i in range(3)]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "id3", "fi')
    rej.write_text(json.dumps({"file": "f", "line": 9, "index": 5, "id": None, "reason": "x", "excerpt": ""}) + "\n")
    done, scored, rejected = scan_done(out, "jsonl", rej)
    assert (scored, rejected, len(done)) == (3, 1, 4)
    assert done.has("f", 5) and not done.has("f", 3)
    assert out.read_text().endswith("}\n")


def test_csv_scan_cuts_a_row_whose_quoted_last_field_was_cut(tmp_path):
    out = tmp_path / "o.csv"
    whole = csv_header() + _csv(_row("f", 0)) + _csv(_row("f", 1))
    cut = _csv(_row("f", 2, lang="e\nn"))  # a quoted last field with a newline inside
    out.write_text(whole + cut[: cut.index("\n") + 1])  # cut right after that newline: 10 fields parse
    done, scored, _ = scan_done(out, "csv", tmp_path / "none.jsonl")
    assert scored == 2 and not done.has("f", 2)
    assert out.read_text() == whole


def test_scan_refuses_files_it_did_not_write(tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(BatchUsageError, match="does not start with the header"):
        scan_done(out, "csv", tmp_path / "none.jsonl")
    out = tmp_path / "o.jsonl"
    out.write_text('{"file": "f", "index": 0}\nnot json\n{"file": "f", "index": 2}\n')
    with pytest.raises(BatchUsageError, match="line 2 of the output"):
        scan_done(out, "jsonl", tmp_path / "none.jsonl")
