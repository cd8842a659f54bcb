def test_roundtrip(store):
    s, tok = store.create("acme-corp", 1, ip_address="10.0.0.1", user_agent="curl/8", auth_method="password")
    assert store.validate("acme-corp", tok) == s

async def test_async(astore, store):
    s, tok = await astore.create("acme-corp", 1, ip_address="10.0.0.1", user_agent="curl/8", auth_method="password")
    assert store.validate("acme-corp", tok) == s
    assert (await astore.validate("acme-corp", tok)) == s
