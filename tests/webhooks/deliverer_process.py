"""A deliverer in a process of its own, for the tests that kill one (SIGKILL: no clean-up):

    python -m tests.webhooks.deliverer_process REDIS_URL PREFIX

It prints its name once it runs, and delivers with the tests' SHORT settings (a 2 s lease).
"""

from __future__ import annotations

import asyncio
import sys

from sessionstore import AsyncSessionStore, StoreConfig
from sessionstore.webhooks.delivery import Deliverer
from tests.webhooks.helpers import SHORT


async def main(url: str, prefix: str) -> None:
    store = AsyncSessionStore.from_url(url, config=StoreConfig(prefix=prefix, events=True))
    deliverer = Deliverer(store, **SHORT)
    print(deliverer.name, flush=True)
    await deliverer.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
