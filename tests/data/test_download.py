import hashlib
import os

import pytest

from tests.data.archive_helpers import ServedFile, http_server
from vosbench.data.download import DAVIS_ARCHIVES, davis_archive, download, url_filename
from vosbench.errors import DownloadError

PAYLOAD = os.urandom(300_000)


class Recorder:
    def __init__(self):
        self.totals, self.advanced = [], 0

    def start(self, description, total=None):
        self.totals.append(total)

    def advance(self, n=1):
        self.advanced += n

    def update(self, description):
        pass


def test_official_archive_table():
    assert len(DAVIS_ARCHIVES) == 6
    spec = davis_archive("test-dev", "Full-Resolution")
    assert (
        spec.url
        == "https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-test-dev-Full-Resolution.zip"
    )
    assert spec.filename == "DAVIS-2017-test-dev-Full-Resolution.zip"
    with pytest.raises(DownloadError, match="no DAVIS-2017 archive"):
        davis_archive("val", "480p")
    assert url_filename("http://h/a/b%20c.zip?x=1") == "b c.zip"


def test_download_with_checksum_and_progress(tmp_path):
    files = {"/f.bin": ServedFile(PAYLOAD)}
    rec = Recorder()
    with http_server(files) as base:
        out = download(
            f"{base}/f.bin",
            tmp_path / "f.bin",
            sha256=hashlib.sha256(PAYLOAD).hexdigest(),
            expected_size=len(PAYLOAD),
            progress=rec,
            backoff=0,
        )
    assert out.read_bytes() == PAYLOAD
    assert rec.totals == [len(PAYLOAD)] and rec.advanced == len(PAYLOAD)
    assert not (tmp_path / "f.bin.part").exists()


def test_dropped_connection_resumes_with_range(tmp_path):
    files = {"/f.bin": ServedFile(PAYLOAD, drop_after=100_000)}
    rec = Recorder()
    with http_server(files) as base:
        out = download(
            f"{base}/f.bin", tmp_path / "f.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), backoff=0, progress=rec
        )
    assert out.read_bytes() == PAYLOAD
    assert rec.totals == [len(PAYLOAD)] and rec.advanced == len(PAYLOAD)  # one bar across the retry
    assert files["/f.bin"].requests == [None, "bytes=100000-"]


def test_resume_from_existing_part_file(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:123_456])
    files = {"/f.bin": ServedFile(PAYLOAD)}
    with http_server(files) as base:
        download(f"{base}/f.bin", tmp_path / "f.bin", backoff=0)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert files["/f.bin"].requests == ["bytes=123456-"]


def test_complete_part_file_gets_416_and_is_kept(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    files = {"/f.bin": ServedFile(PAYLOAD)}
    with http_server(files) as base:
        download(f"{base}/f.bin", tmp_path / "f.bin", expected_size=len(PAYLOAD), backoff=0)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(b"garbage" * 10)
    files = {"/f.bin": ServedFile(PAYLOAD, honour_range=False)}
    with http_server(files) as base:
        download(f"{base}/f.bin", tmp_path / "f.bin", backoff=0)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_removes_part(tmp_path):
    files = {"/f.bin": ServedFile(PAYLOAD)}
    with http_server(files) as base, pytest.raises(DownloadError, match=r"sha256 .* does not match"):
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256="0" * 64, backoff=0)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_size_mismatch_is_refused(tmp_path):
    files = {"/f.bin": ServedFile(PAYLOAD)}
    with http_server(files) as base, pytest.raises(DownloadError, match="expected 5"):
        download(f"{base}/f.bin", tmp_path / "f.bin", expected_size=5, backoff=0)
    assert not (tmp_path / "f.bin").exists()


def test_404_fails_at_once_and_5xx_after_retries(tmp_path):
    files = {"/busy": ServedFile(PAYLOAD, status=503)}
    with http_server(files) as base:
        with pytest.raises(DownloadError, match="HTTP 404"):
            download(f"{base}/missing.zip", tmp_path / "m.zip", backoff=0)
        with pytest.raises(DownloadError, match="failed after 3 tries.*HTTP 503"):
            download(f"{base}/busy", tmp_path / "b.zip", retries=2, backoff=0)
    assert len(files["/busy"].requests) == 3


def test_existing_verified_file_is_not_downloaded_again(tmp_path):
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    files = {"/f.bin": ServedFile(PAYLOAD)}
    with http_server(files) as base:
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert files["/f.bin"].requests == []


def test_refused_connection_fails_without_retrying(tmp_path):
    import time

    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:9/x\.zip: cannot connect"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", retries=3, backoff=5, timeout=2)
    assert time.perf_counter() - t0 < 4  # no backoff sleeps


def test_download_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DownloadError, match="cannot create the download folder"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "file" / "dl" / "x.zip", retries=0, timeout=2)


def _stored_zip(content: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("DAVIS/a.bin", content)
    return buf.getvalue()


def test_resumed_zip_whose_parts_do_not_fit_never_takes_the_final_name(tmp_path):
    # the .part is the first half of another zip of the same size: sizes agree, member CRCs do not
    old, new = _stored_zip(PAYLOAD[:50_000]), _stored_zip(PAYLOAD[50_000:100_000])
    assert len(old) == len(new)
    (tmp_path / "a.zip.part").write_bytes(old[: len(old) // 2])
    files = {"/a.zip": ServedFile(new)}
    with http_server(files) as base, pytest.raises(DownloadError, match=r"a\.zip: member 'DAVIS/a\.bin' fails its CRC"):
        download(f"{base}/a.zip", tmp_path / "a.zip", backoff=0)
    assert list(tmp_path.iterdir()) == []
    with http_server({"/a.zip": ServedFile(new)}) as base:  # the next run starts clean
        assert download(f"{base}/a.zip", tmp_path / "a.zip", backoff=0).read_bytes() == new


def test_malformed_url_is_one_error_before_any_write(tmp_path):
    with pytest.raises(DownloadError, match=r"ftp//bad: not a download URL"):
        download("ftp//bad", tmp_path / "dl" / "bad", backoff=0)
    assert not (tmp_path / "dl").exists()
