"""Test helpers: zip a folder, and a local HTTP server with Range support that can drop connections."""

from __future__ import annotations

import contextlib
import errno
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def zip_tree(folder: Path, zip_path: Path, prefix: str = "DAVIS") -> Path:
    """Zip every file under ``folder`` as ``prefix/<relative path>`` (no prefix if empty)."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder).as_posix()
            name = f"{prefix}/{rel}" if prefix else rel
            if p.is_dir():
                zf.writestr(name + "/", b"")
            else:
                zf.write(p, name)
    return zip_path


def replace_member(zip_path: Path, name: str, data: bytes) -> None:
    """Rewrite ``zip_path`` with member ``name``'s bytes replaced by ``data``."""
    with zipfile.ZipFile(zip_path) as zf:
        items = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, blob in items:
            zf.writestr(info, data if info.filename == name else blob)


@dataclass
class ServedFile:
    """What the server serves and how it misbehaves."""

    data: bytes
    drop_after: int | None = None  # first full-body response sends only this many bytes, then closes
    honour_range: bool = True
    requests: list[str | None] = field(default_factory=list)  # Range header of each request
    status: int = 200


def _handler(files: dict[str, ServedFile]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            served = files.get(self.path)
            if served is None:
                self.send_error(404, "not found")
                return
            rng = self.headers.get("Range")
            served.requests.append(rng)
            if served.status != 200:
                self.send_error(served.status)
                return
            data, start = served.data, 0
            m = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if m and served.honour_range:
                start = int(m.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if served.drop_after is not None:
                cut, served.drop_after = served.drop_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def http_server(files: dict[str, ServedFile]) -> Iterator[str]:
    """Serve ``files`` (path -> ServedFile) on 127.0.0.1; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fail_disk_after(monkeypatch, n_members: int) -> None:
    """Make archive extraction hit "no space left on device" part-way through member ``n_members``."""
    from vosbench.data import archive as archive_mod

    real = archive_mod._copy_stream
    calls = {"n": 0}

    def failing_copy(src, dst, progress):
        calls["n"] += 1
        if calls["n"] == n_members:
            dst.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst, progress)

    monkeypatch.setattr(archive_mod, "_copy_stream", failing_copy)
