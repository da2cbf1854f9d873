"""invoice-rpc's benchmark suite: `python -m bench` (see bench/run.py and README's Benchmarks)."""
