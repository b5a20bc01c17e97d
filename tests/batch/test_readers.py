"""The streaming readers, without the classifier: records, locations, rejects."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from replyguard.batch import BatchUsageError, expand_inputs
from replyguard.batch.readers import EMAIL, REJECT, TEXT, ReadOptions, check_sources, iter_items

from .conftest import FIXTURES


def items(*inputs, options: ReadOptions | None = None, **kw) -> list[tuple]:
    sources = expand_inputs([str(i) for i in inputs], **kw)
    opts = options or ReadOptions()
    check_sources(sources, opts)
    return [it for _, it in iter_items(sources, opts)]


def test_jsonl_records_carry_line_index_and_id_and_skip_blank_lines():
    got = items(FIXTURES / "replies.jsonl", options=ReadOptions(contact_field="contact"))
    assert [g[0] for g in got] == [TEXT] * 12
    assert [g[2] for g in got][:5] == [1, 2, 3, 5, 6]  # line 4 is blank: not a record
    assert [g[3] for g in got] == list(range(12))
    assert got[0][4:7] == ("r1", "ana@example.com", "STOP")
    assert got[5][4] == 6  # ids keep their JSON type
    assert got[10][5] is None  # no contact field


def test_gzip_is_read_transparently_and_equals_the_plain_file():
    plain = items(FIXTURES / "replies.jsonl")
    gz = items(FIXTURES / "replies.jsonl.gz")
    assert [g[2:7] for g in gz] == [p[2:7] for p in plain]
    assert {g[1] for g in gz} == {str(FIXTURES / "replies.jsonl.gz")}


def test_gzip_without_gz_suffix_is_sniffed(tmp_path):
    p = tmp_path / "replies.jsonl"
    p.write_bytes(gzip.compress((FIXTURES / "replies.jsonl").read_bytes()))
    assert len(items(p)) == 12


def test_every_broken_jsonl_line_is_a_reject_with_its_reason():
    got = items(FIXTURES / "broken.jsonl")
    assert all(g[0] == REJECT for g in got)
    assert len(got) == 11  # 12 lines, one blank
    reasons = [g[6][0] for g in got]
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1] == "missing text field 'text'"
    assert "not a string (got int)" in reasons[2]
    assert reasons[3] == "expected a JSON object, got list"
    assert reasons[4].startswith("undecodable bytes: not UTF-8")
    assert "lone surrogate" in reasons[5]
    assert reasons[6] == "missing text field 'text'"  # null
    assert [g[2] for g in got][-3:] == [10, 11, 12]  # line numbers skip the blank line 9


def test_csv_multiline_rows_report_the_line_they_start_on():
    got = items(FIXTURES / "replies.csv", options=ReadOptions(text_column="body", contact_field="contact"))
    assert [g[4] for g in got] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert [g[2] for g in got] == [2, 3, 4, 7, 9, 10]
    assert got[2][6] == "Please remove me from your list.\nThanks,\nCy"
    assert got[5][6] == 'She said "not interested", sorry.'
    assert got[0][5] == "ana@example.com"


def test_broken_csv_rows_are_rejected_and_good_rows_kept():
    got = items(FIXTURES / "broken.csv", options=ReadOptions(text_column="body"))
    assert [(g[0], g[4]) for g in got] == [(TEXT, "b1"), (REJECT, "b2"), (REJECT, "b3"), (TEXT, "b4")]
    assert "4 fields, the header has 2" in got[1][6][0]
    assert got[2][6][0] == "undecodable bytes: line 4 is not UTF-8"


def test_csv_without_the_text_column_is_a_usage_error_naming_the_columns():
    with pytest.raises(BatchUsageError, match=r"no column 'text'.*'body'.*--text-column"):
        items(FIXTURES / "replies.csv")


def test_tsv_and_bom(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_bytes(b"\xef\xbb\xbfid\ttext\n1\tSTOP\n2\thello, there\n")
    got = items(p)
    assert [(g[4], g[6]) for g in got] == [("1", "STOP"), ("2", "hello, there")]


def test_mbox_messages_with_a_broken_one_in_place():
    got = items(FIXTURES / "archive.mbox")
    assert [g[0] for g in got] == [EMAIL] * 6  # broken ones are judged when parsed
    assert [g[2] for g in got] == [1, 14, 24, 28, 38, 52]
    assert [g[3] for g in got] == list(range(6))
    assert b"\nFrom the desk of Ben" in got[1][6]  # >From unescaped
    assert not got[0][6].endswith(b"\n\n")


def test_mbox_text_before_the_first_separator_is_a_reject_and_gz_mbox_reads(tmp_path):
    p = tmp_path / "Inbox"  # no suffix: sniffed as mbox... not here, it starts with junk
    p.write_bytes(b"\n\njunk before\n" + (FIXTURES / "archive.mbox").read_bytes())
    with pytest.raises(BatchUsageError, match="cannot tell the format"):
        items(p)
    got = items(p, input_format="mbox")
    assert got[0][0] == REJECT and got[0][2] == 3 and "before the first 'From '" in got[0][6][0]
    assert [g[3] for g in got] == list(range(7))
    z = tmp_path / "archive.mbox.gz"
    z.write_bytes(gzip.compress((FIXTURES / "archive.mbox").read_bytes()))
    assert [g[6] for g in items(z)] == [g[6] for g in items(FIXTURES / "archive.mbox")]


def test_mbox_without_suffix_is_sniffed(tmp_path):
    p = tmp_path / "Inbox"
    shutil.copy(FIXTURES / "archive.mbox", p)
    assert len(items(p)) == 6


def test_eml_folder_is_read_recursively_in_sorted_order_and_other_files_ignored(tmp_path):
    got = items(FIXTURES / "eml")
    names = [Path(g[1]).name for g in got]
    assert names == ["01_optout.eml", "02_autoreply.eml", "03_vendor_autoreply.eml", "04_html.eml", "05_crlf.eml"]
    assert all(g[0] == EMAIL and g[2] is None and g[3] == 0 for g in got)
    (tmp_path / "empty.eml").write_bytes(b"  \n")
    assert items(tmp_path)[0][6][0] == "broken message: the file is empty"


def test_truncated_gzip_rejects_the_rest_and_keeps_what_was_read(tmp_path):
    data = "".join(f'{{"id": {i}, "text": "reply number {i} with some words"}}\n' for i in range(2000)).encode()
    z = gzip.compress(data)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(z[: len(z) // 2])
    got = items(p)
    assert got[-1][0] == REJECT and "truncated or corrupt" in got[-1][6][0]
    assert all(g[0] == TEXT for g in got[:-1]) and 0 < len(got) - 1 < 2000
    assert got[-1][3] == len(got) - 1


def test_parquet_rows_nulls_rejected(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    t = pa.table({"reply_id": [10, 11, 12], "body": ["STOP", None, "Tuesday works"], "who": ["a", "b", "c"]})
    p = tmp_path / "r.parquet"
    pq.write_table(t, p, row_group_size=2)
    got = items(p, options=ReadOptions(text_column="body", id_column="reply_id", contact_field="who"))
    assert [(g[0], g[3], g[4], g[5]) for g in got] == [(TEXT, 0, 10, "a"), (REJECT, 1, 11, None), (TEXT, 2, 12, "c")]
    assert got[1][6][0] == "missing text: column 'body' is null"
    with pytest.raises(BatchUsageError, match="no column 'text'"):
        items(p)


def test_globs_keep_order_and_read_a_file_once(tmp_path):
    for n in ("b.jsonl", "a.jsonl", "c.csv"):
        shutil.copy(FIXTURES / ("replies.csv" if n.endswith(".csv") else "replies.jsonl"), tmp_path / n)
    srcs = expand_inputs([str(tmp_path / "*.jsonl"), str(tmp_path / "a.jsonl"), str(tmp_path / "c.csv")])
    assert [Path(s.name).name for s in srcs] == ["a.jsonl", "b.jsonl", "c.csv"]
    assert [s.group for s in srcs] == [0, 0, 2]


@pytest.mark.parametrize(("given", "message"), [
    ("nope.jsonl", "input 'nope.jsonl' does not exist"),
    ("nope/*.jsonl", "matches no file"),
])
def test_missing_inputs_are_usage_errors(given, message):
    with pytest.raises(BatchUsageError, match=message):
        expand_inputs([given])


def test_unknown_suffix_and_folder_without_eml_are_usage_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BatchUsageError, match=r"cannot tell the format.*--input-format"):
        expand_inputs([str(tmp_path / "notes.txt")])
    with pytest.raises(BatchUsageError, match=r"holds no \.eml files"):
        expand_inputs([str(tmp_path)])
