"""Benchmarks (plain scripts, not timed tests): `python -m bench.run` writes docs/benchmarks.md; `--smoke` for CI."""
