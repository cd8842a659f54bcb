"""Tokens and ids: enough entropy, only a hash at rest, the owner readable only from tokens."""

from __future__ import annotations

import hashlib

from sessionstore._core import tokens
from sessionstore._core.inputs import SESSION_ID


def test_session_ids_embed_the_bucket_and_tokens_embed_the_id() -> None:
    bucket = tokens.user_bucket("acme-corp", 456, 128)
    session_id, token, secret_hash = tokens.new_session(bucket)
    assert SESSION_ID.fullmatch(session_id)
    assert session_id[tokens.BUCKET] == bucket and token[4:6] == bucket
    parsed = tokens.parse_token(token)
    assert parsed is not None and parsed.session_id == session_id
    assert parsed.secret_hash == secret_hash == hashlib.sha256(token[-32:].encode()).digest()


def test_secrets_carry_at_least_128_bits() -> None:
    # 32 base62 characters hold 190 bits; check the alphabet is really used.
    drawn = [tokens.new_session("0a")[1][-tokens.SECRET_LEN :] for _ in range(2000)]
    assert len(set(drawn)) == len(drawn)
    alphabet = set("".join(drawn))
    assert len(alphabet) == 62
    assert tokens.SECRET_LEN * 5.95 >= 128


def test_buckets_depend_only_on_tenant_user_and_bucket_count() -> None:
    # Nothing stored in Redis decides a user's bucket: every process computes the same one.
    spread = {tokens.user_bucket("acme-corp", user, 128) for user in range(5000)}
    assert len(spread) == 128
    assert all(len(bucket) == tokens.BUCKET_LEN for bucket in spread)
    assert tokens.user_bucket("acme-corp", 456, 128) == tokens.user_bucket("acme-corp", 456, 128)
    others = {tokens.user_bucket(tenant, 456, 128) for tenant in ("a", "b", "c", "d", "e", "f")}
    assert len(others) > 1
    assert {tokens.user_bucket("acme-corp", user, 1) for user in range(100)} == {"00"}


def test_every_bucket_count_has_distinct_names() -> None:
    names = [tokens.bucket_name(number) for number in range(tokens.MAX_BUCKETS)]
    assert len(set(names)) == tokens.MAX_BUCKETS


def test_parse_rejects_anything_not_issued() -> None:
    _, token, _ = tokens.new_session("0a")
    for bad in [token[:-1], token + "x", token.replace("sst_", "sss_"), token[:-1] + "-",
                "", None, 1, token.encode(), token.upper()]:  # fmt: skip
        assert tokens.parse_token(bad) is None, bad


def test_reprs_hide_the_secret_hash() -> None:
    _, token, _ = tokens.new_session("0a")
    parsed = tokens.parse_token(token)
    assert parsed is not None
    assert parsed.secret_hash.hex() not in repr(parsed) and str(parsed.secret_hash) not in repr(
        parsed
    )
