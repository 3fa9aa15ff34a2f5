"""Client-side helpers for the model service: run it in a subprocess, and time requests against it.

    from serving import client

    with client.start_server("models/local") as server:    # ``python -m serving`` on a free loopback port
        httpx.get(f"{server.url}/health")
    server.returncode, server.clean_exit, server.log()

``start_server`` returns once ``/health`` answers; the server's output goes to a log file, never
to the caller's terminal or notebook; the server is stopped by ``stop()``, by leaving the ``with``
block, or at the latest when the calling interpreter exits (``atexit``). ``run_load`` and
``in_process_ms`` are the timing loops of ``benchmarks/serving_load.py`` and notebook 23.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from dl_utils import config


class ServerError(RuntimeError):
    """The service did not start: it exited (its exit code and the end of its log are in the message)
    or did not answer ``/health`` in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerHandle:
    """A running ``python -m serving`` process: ``url``, ``log()``, ``stop()``; a context manager."""

    def __init__(self, proc: subprocess.Popen, url: str, log_path: Path, own_log: bool):
        self.proc, self.url, self.log_path = proc, url, log_path
        self._own_log, self._log_text = own_log, None
        self.killed = False   # True when the process ignored SIGTERM and had to be killed

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that ended it); ``None`` while it runs."""
        return self.proc.poll()

    @property
    def clean_exit(self) -> bool:
        """It has exited by itself or on SIGTERM (uvicorn shuts down gracefully, then re-raises the
        signal, so ``-15`` is the normal code after ``stop()``), without being killed."""
        return (not self.killed and self.returncode is not None
                and self.returncode in (0, -signal.SIGTERM))

    def log(self) -> str:
        """Everything the server has written to stdout and stderr so far."""
        if self._log_text is not None:
            return self._log_text
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout`` s for the graceful shutdown (SIGKILL after it); the exit code.
        Safe to call more than once."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait()
        atexit.unregister(self.stop)
        if self._own_log and self._log_text is None:
            self._log_text = self.log()
            self.log_path.unlink(missing_ok=True)
        return self.proc.returncode

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(models_dir: str | Path, port: int | None = None, log_path: str | Path | None = None, *,
                 host: str = "127.0.0.1", threads: int = 1, log_level: str = "info",
                 timeout: float = 120.0) -> ServerHandle:
    """Start ``python -m serving`` (this interpreter, run from the repository root) on ``host:port``
    (default: a free loopback port) and return once ``GET /health`` answers 200.

    Its stdout and stderr go to ``log_path`` (default: a temporary file, removed by ``stop()``
    after its text is kept for ``log()``). Raises :class:`ServerError` with the exit code and the
    log's last lines if the process exits first, or after ``timeout`` seconds.
    """
    for attempt in range(3 if port is None else 1):   # a free port can be taken before the server binds it
        handle = _launch(Path(models_dir).resolve(), port or free_port(host), log_path, host, threads, log_level)
        atexit.register(handle.stop)
        deadline = time.monotonic() + timeout
        while handle.proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{handle.url}/health", timeout=2).status_code == 200:
                    return handle
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        code = handle.stop()
        tail = "\n".join(handle.log().strip().splitlines()[-15:])
        if "address already in use" in tail.lower() and attempt < 2 and port is None:
            continue
        if handle.killed or code == -signal.SIGTERM:
            raise ServerError(f"the service did not answer /health within {timeout:.0f} s; its log ends:\n{tail}")
        raise ServerError(f"the service exited with code {code}; its log ends:\n{tail}")
    raise ServerError("no free port could be bound")   # pragma: no cover (the loop returns or raises)


def _launch(models_dir: Path, port: int, log_path: str | Path | None, host: str, threads: int,
            log_level: str) -> ServerHandle:
    own = log_path is None
    if own:
        fd, name = tempfile.mkstemp(prefix="serving-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    cmd = [sys.executable, "-m", "serving", "--host", host, "--port", str(port), "--models-dir", str(models_dir),
           "--threads", str(threads), "--log-level", log_level]
    with open(log_path, "wb") as log:   # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=config.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return ServerHandle(proc, f"http://{host}:{port}", log_path, own)


def run_load(call: Callable[[int], bool], n: int, concurrency: int, budget: float) -> dict[str, Any]:
    """Call ``call(i)`` for i < n from ``concurrency`` threads, starting no call after ``budget`` seconds.

    Returns the number of requests, failures (``call`` returned false), seconds, requests/s,
    p50/p99 latency in ms and every latency (``latencies_ms``, in completion order).
    """
    start = time.perf_counter()
    latencies: list[float] = []
    failed: list[int] = []

    def one(i: int) -> None:
        if time.perf_counter() - start > budget:
            return
        t = time.perf_counter()
        ok = call(i)
        latencies.append(time.perf_counter() - t)   # list.append is atomic: no lock needed
        if not ok:
            failed.append(i)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "failures": len(failed), "seconds": wall,
            "requests_per_s": len(latencies) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "latencies_ms": lat}


def in_process_ms(fn: Callable[[int], Any], n: int, budget: float) -> float:
    """Median milliseconds of ``fn(i)`` over up to ``n`` calls (after one warm-up), within ``budget`` s."""
    fn(0)
    times, start = [], time.perf_counter()
    for i in range(n):
        if time.perf_counter() - start > budget:
            break
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)
