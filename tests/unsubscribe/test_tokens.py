"""Tokens: round trip, opacity, rotation, expiry, and every kind of rejection."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replyguard.unsubscribe import (
    ENV_VAR,
    KeyRing,
    KeyRingError,
    Rejection,
    ValidityError,
    unsubscribe_token,
    verify_unsubscribe_token,
)

from .conftest import NEW, OLD, T0

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_round_trip_gives_back_contact_list_issue_time_and_key(ring):
    t = unsubscribe_token("jane.doe@example.com", list_id="weekly-news", keys=ring, now=T0)
    check = verify_unsubscribe_token(t, keys=ring, now=T0 + timedelta(days=1))
    assert check and check.ok and check.reason is None
    assert (check.contact_id, check.list_id, check.issued_at, check.key_id) == (
        "jane.doe@example.com", "weekly-news", T0, NEW[0])


def test_token_is_url_safe_and_shows_no_pii(ring):
    contact = "jane.doe@example.com"
    t = unsubscribe_token(contact, list_id="customers-acme", keys=ring, now=T0)
    assert set(t) <= set(ALPHABET)
    raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    for secret_part in (b"jane", b"example", b"@", b"acme"):
        assert secret_part not in raw
    for text_part in ("jane", "example", "acme"):
        assert text_part not in t.lower()


def test_same_inputs_give_the_same_token_and_other_contacts_differ(ring):
    a = unsubscribe_token("c-1", keys=ring, now=T0)
    assert a == unsubscribe_token("c-1", keys=ring, now=T0)
    assert a != unsubscribe_token("c-2", keys=ring, now=T0)


def test_list_id_none_and_empty_are_distinct(ring):
    assert verify_unsubscribe_token(unsubscribe_token("c", keys=ring, now=T0), keys=ring, now=T0).list_id is None
    assert verify_unsubscribe_token(unsubscribe_token("c", list_id="", keys=ring, now=T0),
                                    keys=ring, now=T0).list_id == ""


def test_unicode_contact_ids_round_trip(ring):
    t = unsubscribe_token("Jürgen Müller <jü@bücher.de>", keys=ring, now=T0)
    assert verify_unsubscribe_token(t, keys=ring, now=T0).contact_id == "Jürgen Müller <jü@bücher.de>"


def test_key_rotation_newest_signs_old_keys_still_verify():
    old_ring = KeyRing([OLD])
    t_old = unsubscribe_token("c-1", keys=old_ring, now=T0)
    rotated = KeyRing([OLD, NEW])
    t_new = unsubscribe_token("c-1", keys=rotated, now=T0)
    assert verify_unsubscribe_token(t_new, keys=rotated, now=T0).key_id == NEW[0]
    assert verify_unsubscribe_token(t_old, keys=rotated, now=T0).ok  # issued before the rotation
    # once the old key is dropped its tokens stop working, with the reason
    retired = KeyRing([NEW])
    check = verify_unsubscribe_token(t_old, keys=retired, now=T0)
    assert not check and check.reason is Rejection.UNKNOWN_KEY and OLD[0] in check.detail
    assert check.contact_id is None


def test_a_key_with_the_same_id_but_another_secret_is_a_forgery():
    forged = unsubscribe_token("victim@example.com", keys=KeyRing([(NEW[0], "attacker-guessed-secret-000")]), now=T0)
    check = verify_unsubscribe_token(forged, keys=KeyRing([OLD, NEW]), now=T0)
    assert check.reason is Rejection.BAD_SIGNATURE and check.contact_id is None


def test_default_validity_is_60_days_and_expired_tokens_say_so(ring):
    t = unsubscribe_token("c-1", keys=ring, now=T0)
    assert verify_unsubscribe_token(t, keys=ring, now=T0 + timedelta(days=60)).ok
    late = verify_unsubscribe_token(t, keys=ring, now=T0 + timedelta(days=60, seconds=1))
    assert late.reason is Rejection.EXPIRED and not late.ok and "60 days" in late.detail


def test_validity_is_configurable_but_never_below_30_days(ring):
    t = unsubscribe_token("c-1", keys=ring, now=T0)
    assert verify_unsubscribe_token(t, keys=ring, now=T0 + timedelta(days=80), validity=90).ok
    assert verify_unsubscribe_token(t, keys=ring, now=T0 + timedelta(days=31), validity=30).reason is Rejection.EXPIRED
    for bad in (29, timedelta(days=29, hours=23), 0, -5):
        with pytest.raises(ValidityError, match="shorter than the minimum of 30 days") as exc:
            verify_unsubscribe_token(t, keys=ring, validity=bad)
        assert isinstance(exc.value, ValueError)
        assert str(timedelta(days=bad) if isinstance(bad, int) else bad) in str(exc.value)


def test_token_from_the_future_is_rejected_beyond_clock_skew(ring):
    t = unsubscribe_token("c-1", keys=ring, now=T0 + timedelta(hours=1))
    assert verify_unsubscribe_token(t, keys=ring, now=T0).reason is Rejection.NOT_YET_VALID
    t2 = unsubscribe_token("c-1", keys=ring, now=T0 + timedelta(minutes=2))
    assert verify_unsubscribe_token(t2, keys=ring, now=T0).ok


@pytest.mark.parametrize("bad, reason", [
    ("", Rejection.MALFORMED),
    ("abc def", Rejection.MALFORMED),
    ("abc=", Rejection.MALFORMED),
    ("a" * 5000, Rejection.MALFORMED),
    ("AQ", Rejection.TRUNCATED),
    ("AgA" + "A" * 100, Rejection.UNSUPPORTED_VERSION),
])
def test_garbage_is_rejected_with_a_reason(ring, bad, reason):
    assert verify_unsubscribe_token(bad, keys=ring, now=T0).reason is reason


def test_non_string_tokens_are_rejected(ring):
    assert verify_unsubscribe_token(None, keys=ring).reason is Rejection.MALFORMED
    assert verify_unsubscribe_token(b"bytes", keys=ring).reason is Rejection.MALFORMED


def test_truncated_tokens_are_rejected(ring):
    t = unsubscribe_token("c-1", keys=ring, now=T0)
    for n in range(len(t)):
        check = verify_unsubscribe_token(t[:n], keys=ring, now=T0)
        assert not check.ok and check.reason in (Rejection.MALFORMED, Rejection.TRUNCATED, Rejection.BAD_SIGNATURE)


_token = unsubscribe_token("jane@example.com", list_id="news", keys=KeyRing([OLD, NEW]), now=T0)


@st.composite
def mutations(draw):
    t = _token
    kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "append", "swap", "bitflip"]))
    i = draw(st.integers(0, len(t) - 1))
    if kind == "replace":
        c = draw(st.sampled_from(ALPHABET).filter(lambda ch: ch != t[i]))
        return t[:i] + c + t[i + 1:]
    if kind == "delete":
        return t[:i] + t[i + 1:]
    if kind == "insert":
        return t[:i] + draw(st.text(ALPHABET + "=.~%", min_size=1, max_size=4)) + t[i:]
    if kind == "truncate":
        return t[:i]
    if kind == "append":
        return t + draw(st.text(min_size=1, max_size=8))
    if kind == "swap":
        j = draw(st.integers(0, len(t) - 1).filter(lambda j: t[j] != t[i]))
        s = list(t)
        s[i], s[j] = s[j], s[i]
        return "".join(s)
    raw = bytearray(base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)))
    k = draw(st.integers(0, len(raw) * 8 - 1))
    raw[k // 8] ^= 1 << (k % 8)
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@given(mutations())
def test_any_mutation_of_a_valid_token_is_rejected(mutated):
    ring = KeyRing([OLD, NEW])
    assert verify_unsubscribe_token(_token, keys=ring, now=T0).ok
    assert mutated != _token
    check = verify_unsubscribe_token(mutated, keys=ring, now=T0)
    assert not check.ok and check.reason is not None
    assert check.reason is not Rejection.EXPIRED


@given(st.text(min_size=1, max_size=60), st.one_of(st.none(), st.text(max_size=30)))
def test_any_contact_and_list_round_trip(contact, list_id):
    ring = KeyRing([NEW])
    check = verify_unsubscribe_token(unsubscribe_token(contact, list_id=list_id, keys=ring, now=T0),
                                     keys=ring, now=T0)
    assert (check.ok, check.contact_id, check.list_id) == (True, contact, list_id)


def test_keyring_parse_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, f"{OLD[0]}:{OLD[1]}, {NEW[0]}:{NEW[1]}")
    assert KeyRing.from_env().key_ids == (OLD[0], NEW[0])
    t = unsubscribe_token("c-1", now=T0)  # keys=None reads the environment
    assert verify_unsubscribe_token(t, now=T0).key_id == NEW[0]
    f = tmp_path / "keys"
    f.write_text(f"# rotated 2026-01-01\n{OLD[0]}:{OLD[1]}\n{NEW[0]}:{NEW[1]}\n", encoding="utf-8")
    assert KeyRing.from_file(f).signing_key_id == NEW[0]
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(KeyRingError, match=ENV_VAR):
        unsubscribe_token("c-1")


@pytest.mark.parametrize("keys, match", [
    ([], "at least one"),
    ([("bad id!", "x" * 20)], "key id 'bad id!'"),
    ([("k", "x" * 20), ("k", "y" * 20)], "appears twice"),
    ([("k", "short")], "has 5 bytes"),
])
def test_bad_keyrings_name_the_problem_and_not_the_secret(keys, match):
    with pytest.raises(KeyRingError, match=match) as exc:
        KeyRing(keys)
    assert "y" * 20 not in str(exc.value) and "x" * 20 not in str(exc.value)


def test_keyring_repr_hides_secrets(ring):
    assert OLD[1] not in repr(ring) and NEW[1] not in repr(ring) and NEW[0] in repr(ring)


def test_contact_ids_too_long_for_a_token_are_refused(ring):
    with pytest.raises(ValueError, match="at most 512"):
        unsubscribe_token("x" * 513, keys=ring)
    with pytest.raises(ValueError, match="non-empty"):
        unsubscribe_token("", keys=ring)
