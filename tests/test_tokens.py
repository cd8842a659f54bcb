"""Tokens and ids: enough entropy, only a hash at rest, no user id inside."""

from __future__ import annotations

import hashlib

from sessionstore import tokens
from sessionstore.inputs import SESSION_ID


def test_session_ids_embed_the_tag_and_tokens_embed_the_id() -> None:
    tag = tokens.user_tag(b"s" * 32, "acme-corp", 456)
    session_id, token, secret_hash = tokens.new_session(tag)
    assert SESSION_ID.fullmatch(session_id)
    assert session_id[5:15] == tag and token[4:14] == tag
    parsed = tokens.parse_token(token)
    assert parsed is not None and parsed.session_id == session_id
    assert parsed.secret_hash == secret_hash == hashlib.sha256(token[-32:].encode()).digest()


def test_secrets_carry_at_least_128_bits() -> None:
    # 32 base62 characters hold 190 bits; check the alphabet is really used.
    drawn = [tokens.new_session("a" * 10)[1][-tokens.SECRET_LEN :] for _ in range(2000)]
    assert len(set(drawn)) == len(drawn)
    alphabet = set("".join(drawn))
    assert len(alphabet) == 62
    assert tokens.SECRET_LEN * 5.95 >= 128


def test_tags_depend_on_the_secret_tenant_and_user() -> None:
    tag = tokens.user_tag(b"s" * 32, "acme-corp", 456)
    assert tag != tokens.user_tag(b"t" * 32, "acme-corp", 456)
    assert tag != tokens.user_tag(b"s" * 32, "other", 456)
    assert tag != tokens.user_tag(b"s" * 32, "acme-corp", 457)
    assert "456" not in tag


def test_parse_rejects_anything_not_issued() -> None:
    _, token, _ = tokens.new_session("a" * 10)
    for bad in [token[:-1], token + "x", token.replace("sst_", "sss_"), token[:-1] + "-",
                "", None, 1, token.encode(), token.upper()]:  # fmt: skip
        assert tokens.parse_token(bad) is None, bad


def test_reprs_hide_the_secret_hash() -> None:
    _, token, _ = tokens.new_session("a" * 10)
    parsed = tokens.parse_token(token)
    assert parsed is not None
    assert parsed.secret_hash.hex() not in repr(parsed) and str(parsed.secret_hash) not in repr(
        parsed
    )
