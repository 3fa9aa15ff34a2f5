"""Shared fixtures: an isolated data cache and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os

# Keras unit tests run on the torch backend: it proves the helpers are backend-neutral and keeps
# TensorFlow out of this process (importing torchvision after TensorFlow crashes here).
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MPLBACKEND", "Agg")

import http.server  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from the server's root; some names misbehave on purpose."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        server = self.server
        server.requests.append(self.path)
        name = self.path.lstrip("/")
        path = Path(server.root) / name
        if not path.is_file():
            self.send_error(404, "not found")
            return
        body = path.read_bytes()
        if server.delay:
            time.sleep(server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in server.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving ``root``; stopped after the test."""

    def __init__(self, root: Path):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.root = str(root)
        self.httpd.truncate = set()
        self.httpd.delay = 0.0
        self.httpd.requests = []
        self.root = root
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def truncate(self, name: str) -> None:
        self.httpd.truncate.add(name)

    def slow(self, seconds: float) -> None:
        self.httpd.delay = seconds

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    srv = LocalServer(root)
    yield srv
    srv.stop()


def _ci() -> bool:
    """True on CI (CI=true, as GitHub Actions, GitLab and most others set it)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty DL_DATA_DIR, no mirror, no system dataset folders, online unless a test says otherwise."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DL_DATA_DIR", str(path))
    monkeypatch.setenv("DL_SYSTEM_DATASETS", str(tmp_path / "no-system-datasets"))
    monkeypatch.delenv("DL_DATA_MIRROR", raising=False)
    monkeypatch.delenv("DL_OFFLINE", raising=False)
    return path


@pytest.fixture
def mirror_cache(tmp_path, monkeypatch):
    """A fresh offline cache fed from DL_DATA_MIRROR (the real datasets) alone.

    System dataset folders (Debian's /usr/share/datasets) are ignored, so a pass proves that
    the mirror suffices. Without DL_DATA_MIRROR the test is skipped on a developer machine but
    fails on CI (CI set): a CI run that silently skipped the real datasets would prove nothing.
    """
    if not os.environ.get("DL_DATA_MIRROR"):
        message = ("DL_DATA_MIRROR not set: the real datasets are not available offline. "
                   "Set it to the mirror folder, e.g. export DL_DATA_MIRROR=$(realpath ../shared/data)")
        if _ci():
            pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)", pytrace=False)
        pytest.skip(message)
    path = tmp_path / "cache"
    monkeypatch.setenv("DL_DATA_DIR", str(path))
    monkeypatch.setenv("DL_SYSTEM_DATASETS", str(tmp_path / "no-system-datasets"))
    monkeypatch.setenv("DL_OFFLINE", "1")
    return path
