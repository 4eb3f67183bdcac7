"""Start kpose training workers, each with the ``TF_CONFIG`` that places it in the cluster.

Every worker runs ``kpose train`` with the same arguments (a config with
``train.distribution: multi_worker``); see docs/multiworker.md.

On one machine, N local workers on free 127.0.0.1 ports (to try a config, or one process
per GPU group)::

    python training/launch_workers.py --workers 2 -- --config my.yaml

On N machines, run this on each one with the same ``--hosts`` (chief first) and its own
``--index``::

    python training/launch_workers.py --hosts 10.0.0.1:2222,10.0.0.2:2222 --index 0 -- --config my.yaml

It prints ``worker I: pid P`` for each worker it starts, waits for them, and exits with 0
when all finished; when one fails or is killed, it stops the others (they would wait for it
forever) and exits with that worker's code (128 + the signal of a killed one). Starting it again resumes from the backup.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

STOP_GRACE_S = 10.0  # after SIGTERM, before SIGKILL
POLL_S = 0.5


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now (another process may take one before a
    worker binds it; the worker then fails to start and the launcher stops the others)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(hosts: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``hosts`` (``host:port``, chief first)."""
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def start_worker(hosts: list[str], index: int, train_args: list[str]) -> subprocess.Popen:
    """``kpose train train_args`` as worker ``index``, its output on this process's."""
    env = {**os.environ, "TF_CONFIG": tf_config(hosts, index)}
    process = subprocess.Popen([sys.executable, "-m", "kpose.cli.main", "train", *train_args], env=env)
    print(f"worker {index}: pid {process.pid}", flush=True)
    return process


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM the running ones, SIGKILL those still running ``STOP_GRACE_S`` later."""
    running = [p for p in processes if p.poll() is None]
    for p in running:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in running:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def supervise(processes: list[subprocess.Popen]) -> int:
    """Wait for all; on the first failure stop the others. The first failing exit code, or 0."""
    while True:
        codes = [p.poll() for p in processes]
        failed = next((c for c in codes if c not in (None, 0)), None)
        if failed is not None:
            print(f"a worker exited with {failed}: stopping the others", file=sys.stderr, flush=True)
            stop(processes)
            return failed if failed > 0 else 128 - failed  # killed by signal S: 128 + S, as a shell says
        if all(c == 0 for c in codes):
            return 0
        time.sleep(POLL_S)


class Stopped(Exception):
    """The launcher was sent a signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--workers", type=int, help="start this many local workers on free 127.0.0.1 ports")
    where.add_argument("--hosts", help="host:port of every worker, chief first, comma-separated")
    parser.add_argument("--index", type=int, help="with --hosts: this machine's worker index")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the arguments of kpose train")
    args = parser.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.workers is not None:
        if args.workers < 1:
            parser.error(f"--workers: expected at least 1, got {args.workers}")
        if args.index is not None:
            parser.error("--index goes with --hosts (with --workers every worker runs here)")
        hosts = [f"127.0.0.1:{port}" for port in free_ports(args.workers)]
        indices = list(range(args.workers))
    else:
        hosts = args.hosts.split(",")
        if args.index is None or not 0 <= args.index < len(hosts):
            parser.error(f"--index: expected 0 to {len(hosts) - 1} with --hosts, got {args.index}")
        indices = [args.index]
    for signum in (signal.SIGTERM, signal.SIGINT):  # a stopped launcher stops its workers
        signal.signal(signum, _stopped)
    processes = [start_worker(hosts, index, train_args) for index in indices]
    try:
        return supervise(processes)
    except Stopped as stopped:
        stop(processes)
        return 128 + stopped.signum


if __name__ == "__main__":
    sys.exit(main())
