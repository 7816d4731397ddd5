"""What reusing the database connection saves, per job (``database=postgres``).

Against the local PostgreSQL (``local/postgres.py``: TLS, loopback), with the app's own
data-access module (``lambdas/jobs/database.py``):

* **a new connection per job**: TCP, the TLS handshake, the startup and one query;
* **the reused connection**: the ``SELECT 1`` check before reuse and the same query.

Loopback has no network latency: on AWS each round trip of the handshake adds the
network's (about 0.5-1 ms within an AZ), and an IAM token is checked by the proxy, so the
saving there is larger than here. Median and worst of ``--jobs`` runs.

    python -m bench.database [--jobs 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from jobs.database import Database, DatabaseSettings
from local.postgres import LocalPostgres

QUERY = "SELECT count(*) FROM pg_class"


def measure(jobs: int) -> dict[str, list[float]]:
    server = LocalPostgres("jobs", "jobs_admin").start()
    try:
        settings = DatabaseSettings("localhost", server.port, "jobs", "jobs_admin", server.ca_file, 5, 60)
        timings: dict[str, list[float]] = {"new connection per job": [], "reused connection": []}
        for _ in range(jobs):
            fresh = Database(settings, password=lambda _settings: "local")
            started = time.perf_counter()
            fresh.run(QUERY)
            timings["new connection per job"].append(time.perf_counter() - started)
            fresh.close()
        reused = Database(settings, password=lambda _settings: "local")
        reused.run(QUERY)
        for _ in range(jobs):
            started = time.perf_counter()
            reused.run(QUERY)
            timings["reused connection"].append(time.perf_counter() - started)
        assert reused.connections_opened == 1
        reused.close()
        return timings
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    for name, values in measure(args.jobs).items():
        print(
            f"{name:24s} median {statistics.median(values) * 1000:6.2f} ms   worst {max(values) * 1000:6.2f} ms"
            f"   ({len(values)} jobs)"
        )


if __name__ == "__main__":
    main()
