"""A Locust worker process of a distributed campaign: ``python -m loadtest.worker HOST:PORT [--reconnect]``.

Locust's own ``WorkerRunner`` (``Environment.create_worker_runner``) connects to the campaign's master
(``loadtest.distributed``; the worker side lives in ``loadtest.worker_session``). The master sends the
campaign's user classes as descriptions in a ``drlab_users`` custom message before its first ``spawn`` message
(both travel in order on the same socket), so a worker needs no campaign spec of its own. Each request becomes
one ``requests.csv`` row here and travels to the master inside Locust's periodic worker report
(``report_to_master`` → ``worker_report``), where the master writes it and feeds the exporter.

``--reconnect`` (the cluster's worker Deployment) serves run after run: when the master quits, the worker
connects again and waits for the next one. gevent's monkey-patching comes first, as in ``loadtest.run``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from locust.exception import RPCError  # noqa: E402

from loadtest.worker_session import WorkerSession  # noqa: E402

__all__ = ["main"]

log = logging.getLogger(__name__)

#: Seconds a --reconnect worker waits after a master's quit before it offers itself to the next master.
QUIT_GRACE_S = 2.0


def main(argv: list[str] | None = None) -> int:
    """Run ``MASTER_HOST:PORT [--reconnect]``: serve one run (or, with ``--reconnect``, run after run)."""
    argv = sys.argv[1:] if argv is None else argv
    reconnect = "--reconnect" in argv
    rest = [a for a in argv if a != "--reconnect"]
    host, _, port = (rest[0] if len(rest) == 1 else "").rpartition(":")
    if len(rest) != 1 or not port.isdigit():
        print("Error: expected MASTER_HOST:PORT [--reconnect], e.g. 127.0.0.1:5557.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    while True:
        try:
            session = WorkerSession(host or "127.0.0.1", int(port))
            session.wait()
            session.runner.client.close()
        except RPCError as exc:
            if not reconnect:
                print(f"Error: cannot reach the Locust master at {rest[0]}: {exc}", file=sys.stderr)
                return 1
            log.warning("master %s not reachable (%s); retrying", rest[0], exc)
            gevent.sleep(2.0)
            continue
        if not reconnect:
            return 0
        # The master that just quit keeps its socket for a moment (MasterRunner.quit sleeps 0.5 s); a ready
        # message sent now would be acknowledged by it and the worker would wait for its heartbeats in vain.
        gevent.sleep(QUIT_GRACE_S)


if __name__ == "__main__":
    sys.exit(main())
