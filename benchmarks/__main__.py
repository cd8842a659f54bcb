"""Run the benchmark suite: ``python -m benchmarks [--quick] [--embedded] [--redis-url URL]``."""

from .cli import main

raise SystemExit(main())
