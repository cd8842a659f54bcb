"""The sans-I/O core: every decision of the store, as generator flows that never touch a socket.

Drivers (``store.py``, ``aio.py``) run the flows of ``operations.Core`` against Redis; nothing
here imports redis (tests/core/test_boundaries.py holds that, as h11 does for sockets).
"""
