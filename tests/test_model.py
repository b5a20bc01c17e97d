from __future__ import annotations

import numpy as np

from replyguard import ReplyClassifier
from replyguard.features import feature_counts
from replyguard.model import load, save
from replyguard.train import choose_thresholds

SAMPLES = [
    "Please take me off your list.",
    "Sounds good, Tuesday at 10 works. Send the invite to jo@example.com",
    "Ich bin bis zum 20.01. nicht im Büro.",
    "Merci de ne plus m'écrire, je ne suis pas intéressée.",
    "",
    "🙂",
    "Remove Jenna Holt from your list, she left in 2024.",
]


def test_fast_scoring_path_equals_the_training_vectorizer():
    clf = ReplyClassifier.default()
    m = clf.model
    for text in SAMPLES:
        a = clf.analyze(text)
        slow = m.proba(*m.space.vectorize(a))
        fast = m.score(a)[0]
        assert np.allclose(slow, fast, atol=1e-5), text


def test_scores_stay_right_when_the_word_cache_fills_mid_reply():
    # a cache of 16 rows (more than any one sample's words, fewer than all of them) fills
    # inside some samples: their earlier rows would index the old matrix while being
    # summed from the new one
    m = load(ReplyClassifier.default().model.path)
    m._cache = ({}, np.zeros((16, m.W.shape[1])))
    clf = ReplyClassifier(m)
    for text in SAMPLES:
        a = clf.analyze(text)
        assert np.allclose(m.proba(*m.space.vectorize(a)), m.score(a)[0], atol=1e-5), text


def test_vectorizer_reads_the_same_features_as_feature_counts():
    clf = ReplyClassifier.default()
    space = clf.model.space
    for text in SAMPLES:
        a = clf.analyze(text)
        grams, other = feature_counts(a)
        cols, _ = space.vectorize(a)
        want = sorted(space.index[g] for g in grams + other if g in space.index)
        assert sorted(cols) == want, text


def test_save_and_load_round_trip(tmp_path):
    clf = ReplyClassifier.default()
    save(clf.model, tmp_path / "m")
    again = load(tmp_path / "m")
    assert np.array_equal(again.W, clf.model.W) and np.array_equal(again.b, clf.model.b)
    assert again.space.names == clf.model.space.names
    assert again.threshold == clf.model.threshold


def test_thresholds_are_recall_first():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.3, 1.0, 200)
    neg = rng.uniform(0.0, 0.5, 400)
    p = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(200, bool), np.zeros(400, bool)])
    t = choose_thresholds(p, y, 0.98, 0.998)
    thr = t["do_not_email"]
    assert (pos >= thr).mean() >= 0.9
    lo, hi = t["needs_review"]
    assert lo <= hi == max(thr, t["do_not_email_without_rule"])
    assert t["do_not_email_without_rule"] == thr  # no rule evidence given: one group


def test_thresholds_use_rule_evidence():
    # opt-outs with a rule hit score low but nothing else with a rule hit does; without a
    # rule hit, look-alikes reach 0.5: the two groups need different thresholds
    rng = np.random.default_rng(1)
    pos_rule = rng.uniform(0.2, 1.0, 150)
    neg_rule = rng.uniform(0.0, 0.15, 20)
    pos_model = rng.uniform(0.6, 1.0, 50)
    neg_model = rng.uniform(0.0, 0.55, 400)
    p = np.concatenate([pos_rule, neg_rule, pos_model, neg_model])
    y = np.concatenate([np.ones(150, bool), np.zeros(20, bool), np.ones(50, bool), np.zeros(400, bool)])
    live = np.concatenate([np.ones(170, bool), np.zeros(450, bool)])
    t = choose_thresholds(p, y, 0.98, 0.995, live_rule=live)
    t_rule, t_model = t["do_not_email"], t["do_not_email_without_rule"]
    assert t_rule < 0.25 < 0.55 < t_model
    flagged = np.where(live, p >= t_rule, p >= t_model)
    assert (flagged & y).sum() / y.sum() >= 0.98
    assert (flagged & y).sum() / flagged.sum() >= 0.95
    # one threshold for both groups cannot do as well
    single = choose_thresholds(p, y, 0.98, 0.995)["do_not_email"]
    assert ((p >= single) & y).sum() / (p >= single).sum() < (flagged & y).sum() / flagged.sum()


def test_verdict_threshold_follows_the_rule_evidence():
    clf = ReplyClassifier.default()
    m = clf.model
    assert clf.classify("Please unsubscribe me from this list.").threshold == m.threshold
    assert clf.classify("Thanks, see you on Tuesday.").threshold == m.threshold_without_rule


def test_fit_keeps_two_thresholds_only_when_asked():
    from replyguard.corpus import load_records
    from replyguard.features import has_live_rule
    from replyguard.train import TrainConfig, fit
    from tests.conftest import ROOT

    recs = load_records([ROOT / "data" / "splits" / "train.jsonl"])
    by_intent: dict[str, list] = {}
    for r in recs:
        by_intent.setdefault(r.intent, []).append(r)
    train = [r for rs in by_intent.values() for r in rs[:50]]
    dev = [r for rs in by_intent.values() for r in rs[50:90]]
    one = fit(train, dev, config=TrainConfig(C_grid=(4.0,)))
    two = fit(train, dev, config=TrainConfig(C_grid=(4.0,), evidence_thresholds=True))
    t1, t2 = one.card["thresholds"], two.card["thresholds"]
    assert t1["do_not_email"] == t1["do_not_email_without_rule"]
    assert two.card["threshold_policy"].startswith("two do_not_email thresholds")
    # the same weights: only the policy differs
    assert np.array_equal(one.W, two.W)
    clf = ReplyClassifier(two)
    live = clf.analyze("Please unsubscribe me from this list.")
    assert has_live_rule(live)
    assert clf.classify("Please unsubscribe me from this list.").threshold == t2["do_not_email"]
