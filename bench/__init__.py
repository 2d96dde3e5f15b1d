"""tunnel-tui's benchmark: `python -m bench` (or `make bench`).

Starts its own sshd (throwaway user), PostgreSQL, MariaDB and iperf3 on loopback and
measures, interleaved over rounds, direct TCP, OpenSSH `ssh -N -L`, `sshtunnel`
(paramiko), the tunnel-tui engine in-process and tunnel-tui through its agent (`up`).
Writes a Markdown table of medians and per-round paired ratios to docs/BENCHMARKS.md.
"""
