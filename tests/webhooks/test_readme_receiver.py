"""The README's webhook receiver against real deliveries, on every backend.

Its ``verify`` is taken from the README itself, so the example a receiver copies is the one
that accepts what the deliverer sends (and refuses a changed body).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessionstore import AsyncSessionStore
from sessionstore.webhooks.delivery import Deliverer
from sessionstore.webhooks.registry import Webhooks
from tests import backends
from tests.webhooks.receiver import Answer, Receiver, Request

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Callable[..., bool]:
    text = README.read_text()
    section = text[text.index("\n## Webhooks\n") :]
    section = section[: section.index("\n## ", 1)]
    (source,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(source, "README.md, Webhooks", "exec"), namespace)  # its asserts run too
    verify: Callable[..., bool] = namespace["verify"]
    return verify


async def test_the_readme_receiver_verifies_real_deliveries(
    astore: AsyncSessionStore, clock: backends.Clock
) -> None:
    verify = readme_verify()
    receiver = Receiver()
    await receiver.start()
    verdicts: list[bool] = []
    secret = ""

    async def check(request: Request) -> Answer:
        verdicts.append(verify(secret, request.headers, request.body))
        assert not verify(secret, request.headers, request.body + b" ")
        return Answer(200 if verdicts[-1] else 400)

    receiver.script = check
    try:
        _, secret = await Webhooks(astore, allow_private=True).add(
            "acme-corp", receiver.url + "/webhooks"
        )
        for user_id in range(2):
            session, _ = await astore.create(
                "acme-corp", user_id, ip_address="203.0.113.45", user_agent="curl/8.4"
            )
            clock.advance(0.002)
            await astore.revoke("acme-corp", user_id, session.id)
            clock.advance(0.002)
        deliverer = Deliverer(astore, allow_private=True, settle=0, timeout=5)
        assert await deliverer.run_once() == 4
    finally:
        await receiver.close()
    assert verdicts == [True] * 4
    assert len(receiver.delivered("/webhooks")) == 4
