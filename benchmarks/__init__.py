"""Throughput benchmarks: each ``bench_*`` module prints a table and writes ``results/<name>.json``."""
