"""Resumable HTTP downloads with size and checksum verification.

Bytes go to ``<dest>.part``; an interrupted download (dropped connection, killed process) resumes
from the end of that file with an HTTP ``Range`` request. Only a complete, verified file is renamed
onto ``dest``: the size the server announced, the checksums given, and for a ``.zip`` every
member's CRC (so a resumed download whose parts do not fit together never takes the final name).
A file that fails is removed. Uses the standard library (``urllib``) so no extra dependency is needed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from vosbench.errors import DownloadError
from vosbench.progress import Progress, ensure_progress

log = logging.getLogger(__name__)

DAVIS_BASE_URL = "https://data.vision.ee.ethz.ch/csergi/share/davis"
DAVIS_ARCHIVE_SPLITS = ("trainval", "test-dev", "test-challenge")
DAVIS_ARCHIVE_RESOLUTIONS = ("480p", "Full-Resolution")
CHUNK_SIZE = 1 << 20
URL_SCHEMES = ("http", "https", "ftp", "file")
_RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ArchiveSpec:
    """An official archive: where it lives and, where published, its size and checksum.

    The DAVIS site publishes no checksums or sizes, so those are ``None``: the download is then
    verified against the server's ``Content-Length`` only, and the archive's own CRCs are checked
    when it is extracted.
    """

    url: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None

    @property
    def filename(self) -> str:
        return url_filename(self.url)


DAVIS_ARCHIVES: dict[tuple[str, str], ArchiveSpec] = {
    (split, res): ArchiveSpec(f"{DAVIS_BASE_URL}/DAVIS-2017-{split}-{res}.zip")
    for split in DAVIS_ARCHIVE_SPLITS
    for res in DAVIS_ARCHIVE_RESOLUTIONS
}


def davis_archive(split: str, resolution: str) -> ArchiveSpec:
    """The official DAVIS-2017 archive for ``split`` (trainval, test-dev, test-challenge) and resolution."""
    try:
        return DAVIS_ARCHIVES[(split, resolution)]
    except KeyError:
        raise DownloadError(
            f"no DAVIS-2017 archive for split {split!r} at {resolution!r}; splits: "
            f"{', '.join(DAVIS_ARCHIVE_SPLITS)}; resolutions: {', '.join(DAVIS_ARCHIVE_RESOLUTIONS)}"
        ) from None


def url_filename(url: str) -> str:
    """The last path component of a URL (``archive.zip`` for ``https://host/a/archive.zip?x=1``)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme.lower() not in URL_SCHEMES or not (parsed.netloc or parsed.scheme.lower() == "file"):
        raise DownloadError(f"{url}: not a download URL (expected {', '.join(s + '://' for s in URL_SCHEMES)})")
    name = Path(urllib.parse.unquote(parsed.path)).name
    if not name:
        raise DownloadError(f"{url}: URL has no file name")
    return name


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK_SIZE), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(
    path: str | os.PathLike, *, size: int | None = None, sha256: str | None = None, md5: str | None = None
) -> None:
    """Raise :class:`DownloadError` if ``path``'s size or checksums differ from those given."""
    path = Path(path)
    if size is not None and path.stat().st_size != size:
        raise DownloadError(f"{path}: size {path.stat().st_size} bytes, expected {size}")
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is not None:
            got = file_digest(path, algorithm)
            if got.lower() != expected.lower():
                raise DownloadError(
                    f"{path}: {algorithm} {got} does not match the expected {expected.lower()}"
                )


def verify_zip(path: str | os.PathLike, shown: str | os.PathLike | None = None) -> None:
    """Raise :class:`DownloadError` unless ``path`` is a complete zip whose members' CRCs all match."""
    shown = shown or path
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise DownloadError(f"{shown}: not a complete zip archive ({exc})") from None
    except OSError as exc:
        raise DownloadError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if bad is not None:
        raise DownloadError(f"{shown}: member {bad!r} fails its CRC check (corrupt download)")


class _ByteBar:
    """One progress bar across retries; it restarts only when the download restarts from byte 0."""

    def __init__(self, progress: Progress, label: str):
        self.progress, self.label = progress, label
        self.shown = 0
        self.started = False

    def at(self, offset: int, total: int | None) -> None:
        """A response starts delivering bytes from ``offset`` of ``total``."""
        if not self.started or offset < self.shown:
            self.progress.start(self.label, total=total)
            self.started, self.shown = True, 0
        if offset > self.shown:
            self.progress.advance(offset - self.shown)
            self.shown = offset

    def advance(self, n: int) -> None:
        self.progress.advance(n)
        self.shown += n


class _Transient(Exception):
    """A failure worth retrying (connection dropped, timeout, 5xx)."""


def _total_from_response(resp: http.client.HTTPResponse, offset: int) -> int | None:
    """Full file size from Content-Range (206) or Content-Length (200)."""
    if resp.status == 206:
        m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if m:
            if int(m.group(1)) != offset:
                raise _Transient(f"server resumed at byte {m.group(1)}, asked for {offset}")
            return None if m.group(3) == "*" else int(m.group(3))
        length = resp.headers.get("Content-Length")
        return offset + int(length) if length is not None else None
    length = resp.headers.get("Content-Length")
    return int(length) if length is not None else None


def _fetch_once(
    url: str, part: Path, *, timeout: float, bar: _ByteBar, expected_size: int | None
) -> int | None:
    """Fetch (the rest of) ``url`` into ``part``; return the total size the server announced."""
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    request = urllib.request.Request(url, headers={"User-Agent": "vosbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - URL chosen by the user
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset and (expected_size is None or offset == expected_size):
            # The .part file already holds everything: the range past its end is empty.
            m = re.search(r"/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if m is None or int(m.group(1)) == offset:
                bar.at(offset, offset)
                return offset
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise _Transient(f"HTTP 416 for range {offset}-, restarting") from None
        if exc.code in _RETRYABLE_HTTP:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except ValueError as exc:  # a URL urllib cannot open at all
        raise DownloadError(f"{url}: {exc}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        # A refused connection or an unknown host will not fix itself; resets and timeouts may.
        if isinstance(reason, OSError) and not isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
            raise _Transient(f"{reason}") from None
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(str(exc) or type(exc).__name__) from None

    with contextlib.closing(resp):
        status = getattr(resp, "status", None) or 200  # file:// responses have no status
        if offset and status != 206:
            log.info("%s: server ignored the Range request; downloading from the start", url)
            offset = 0
        total = _total_from_response(resp, offset) if status in (200, 206) else None
        if expected_size is not None and total is not None and total != expected_size:
            raise DownloadError(f"{url}: server reports {total} bytes, expected {expected_size}")
        bar.at(offset, total if total is not None else expected_size)
        written = offset
        try:
            with open(part, "ab" if offset else "wb") as fh:
                while True:
                    block = resp.read(CHUNK_SIZE)
                    if not block:
                        break
                    fh.write(block)
                    written += len(block)
                    bar.advance(len(block))
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise _Transient(f"connection lost after {written} bytes ({exc or type(exc).__name__})") from None
        except OSError as exc:
            raise DownloadError(f"{part}: cannot write ({exc.strerror or exc})") from None
    if total is not None and written < total:
        raise _Transient(f"connection closed after {written} of {total} bytes")
    if total is not None and written > total:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: received {written} bytes, more than the announced {total}")
    return total if total is not None else written


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    progress: Progress | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous ``dest.part`` and verifying the result.

    A ``dest`` that already exists and verifies is kept as is. A dropped connection is retried up
    to ``retries`` times, each retry resuming where the last one stopped (``backoff`` seconds,
    doubling, between tries). Raises :class:`DownloadError` with a one-line message on failure;
    a size/checksum mismatch removes the bad bytes so the next run starts clean.
    """
    dest = Path(dest)
    url_filename(url)  # a malformed URL is one error before anything is written
    bar = _ByteBar(ensure_progress(progress), f"download {dest.name}")
    if dest.exists():
        try:
            verify_file(dest, size=expected_size, sha256=sha256, md5=md5)
            log.info("%s already downloaded", dest)
            return dest
        except DownloadError:
            log.warning("%s exists but does not verify; downloading again", dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"{dest.parent}: cannot create the download folder ({exc.strerror or exc})"
        ) from None
    part = dest.with_name(dest.name + ".part")
    delay = backoff
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, timeout=timeout, bar=bar, expected_size=expected_size)
            break
        except _Transient as exc:
            if attempt == retries:
                raise DownloadError(
                    f"{url}: download failed after {retries + 1} tries ({exc}); run again to resume from {part}"
                ) from None
            log.warning("%s: %s; retrying (%d/%d)", url, exc, attempt + 1, retries)
            if delay > 0:
                time.sleep(delay)
                delay *= 2
    try:
        verify_file(part, size=expected_size, sha256=sha256, md5=md5)
        if dest.suffix.lower() == ".zip":
            verify_zip(part, dest)
    except DownloadError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{exc}; the partial download was removed (source {url})") from None
    os.replace(part, dest)
    return dest
