from __future__ import annotations

import json
import random

from replyguard.corpus import build, load_records


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _rec(text, intent="other", lang="en"):
    return {"text": text, "intent": intent, "lang": lang, "tags": ["short"]}


def test_dev_comes_from_the_dev_pass_and_nothing_straddles_splits(tmp_path):
    train = [_rec(f"training reply number {w} about the quarterly freight invoices") for w in
             ("one", "two", "three", "four", "five", "six")]
    train.append(_rec("please take me off your mailing list right now thank you kindly", "do_not_email"))
    train.append(_rec("we will circle back about the warehouse scanners after the summer break"))
    test = [_rec("please take me off your mailing list right now thank you kindly sir", "do_not_email")]
    dev = [_rec("we will circle back about the warehouse scanners after the summer break ok"),
           _rec("please take me off your mailing list right now thank you kindly sir!", "do_not_email"),
           _rec("a development reply nobody else wrote, about tractors and hay")]
    _write(tmp_path / "train_pass" / "a.jsonl", train)
    _write(tmp_path / "test_pass" / "t.jsonl", test)
    _write(tmp_path / "dev_pass" / "d.jsonl", dev)
    manifest = build(tmp_path)
    splits = {name: [r.text for r in load_records([tmp_path / "splits" / f"{name}.jsonl"])]
              for name in ("train", "dev", "test")}
    assert manifest["dev_source"] == "dev_pass"
    # the training near-duplicates of a test item and of a dev item are dropped
    assert manifest["dropped_for_test_overlap"] == 2
    assert len(splits["train"]) == 6
    # the dev item that nearly duplicates a test item is dropped; the rest is the dev pass
    assert manifest["dev_dropped_for_test_overlap"] == 1
    assert splits["dev"] == [dev[0]["text"], dev[2]["text"]]
    assert splits["test"] == [test[0]["text"]]
    assert "Development pass" in (tmp_path / "DATA_CARD.md").read_text(encoding="utf-8")


def test_without_a_dev_pass_dev_is_cut_from_the_training_pass(tmp_path):
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()
    train = [_rec(" ".join(random.Random(i).sample(words, 6))) for i in range(60)]
    _write(tmp_path / "train_pass" / "a.jsonl", train)
    _write(tmp_path / "test_pass" / "t.jsonl", [_rec("something else entirely, about bees")])
    manifest = build(tmp_path, dev_fraction=0.3)
    n_train, n_dev = manifest["splits"]["train"]["n"], manifest["splits"]["dev"]["n"]
    assert manifest["dev_source"] == "train_pass"
    assert n_train + n_dev == 60 and 5 < n_dev < 35
