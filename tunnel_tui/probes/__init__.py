"""Database probes, one module per kind (PostgreSQL, MySQL/MariaDB, ClickHouse,
Vertica, Trino) behind one Probe protocol: TLS, authentication and a first query
through a local tunnel port.
"""
