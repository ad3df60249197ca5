"""External files: pre-placed copies, a real HTTP download on loopback, SHA-256 checks, offline errors."""

import hashlib
import http.server
import threading

import pytest

from i2sb import downloads
from i2sb.downloads import DownloadError, Resource, fetch


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"real bytes")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def register(monkeypatch, url, sha256=None):
    resource = Resource("thing", url, "weights.bin", "I2SB_TEST_THING", "downloads.thing", sha256)
    monkeypatch.setitem(downloads.RESOURCES, "thing", resource)
    return resource


def test_download_verifies_and_caches(monkeypatch, tmp_path, server):
    good = hashlib.sha256(b"real bytes").hexdigest()
    register(monkeypatch, f"{server}/weights.bin", good)
    path = fetch("thing", cache=str(tmp_path / "cache"))
    assert path.read_bytes() == b"real bytes" and path.parent == tmp_path / "cache"
    assert fetch("thing", cache=str(tmp_path / "cache")) == path  # cached: no second download


def test_wrong_sha_is_refused_and_leaves_no_file(monkeypatch, tmp_path, server):
    register(monkeypatch, f"{server}/weights.bin", "0" * 64)
    with pytest.raises(DownloadError, match="expected 0000"):
        fetch("thing", cache=str(tmp_path / "cache"))
    assert not any((tmp_path / "cache").glob("*weights*"))


def test_unpublished_sha_is_pinned_on_first_download(monkeypatch, tmp_path, server):
    register(monkeypatch, f"{server}/weights.bin")
    path = fetch("thing", cache=str(tmp_path))
    assert (
        (tmp_path / "weights.bin.sha256")
        .read_text()
        .startswith(hashlib.sha256(b"real bytes").hexdigest())
    )
    path.write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="does not match"):
        fetch("thing", cache=str(tmp_path))


def test_offline_error_says_where_to_place_the_file(monkeypatch, tmp_path):
    register(monkeypatch, "http://127.0.0.1:9/nothing-listens-here")
    with pytest.raises(DownloadError, match=r"downloads\.thing.*\$I2SB_TEST_THING"):
        fetch("thing", cache=str(tmp_path), timeout=5)


def test_preplaced_file_by_config_key_or_environment(monkeypatch, tmp_path):
    register(monkeypatch, "http://127.0.0.1:9/unused")
    placed = tmp_path / "mine.bin"
    placed.write_bytes(b"x")
    assert fetch("thing", explicit=str(placed), cache=str(tmp_path / "c")) == placed
    monkeypatch.setenv("I2SB_TEST_THING", str(placed))
    assert fetch("thing", cache=str(tmp_path / "c")) == placed
    monkeypatch.setenv("I2SB_TEST_THING", str(tmp_path / "missing.bin"))
    with pytest.raises(DownloadError, match="I2SB_TEST_THING points at .*missing.bin"):
        fetch("thing", cache=str(tmp_path / "c"))


def test_every_known_resource_has_url_env_and_key():
    for resource in downloads.RESOURCES.values():
        assert resource.url.startswith("https://")
        assert resource.env.startswith("I2SB_") and resource.config_key.startswith("downloads.")


def test_a_download_shows_progress_in_mib(monkeypatch, tmp_path, server, caplog):
    caplog.set_level("INFO", logger="i2sb")
    (tmp_path / "www" / "weights.bin").write_bytes(b"x" * (5 << 19))  # 2.5 MiB
    register(monkeypatch, f"{server}/weights.bin")
    path = fetch("thing", cache=str(tmp_path / "cache"))
    assert path.stat().st_size == 5 << 19
    assert "download weights.bin: 0/3 MiB" in caplog.text  # stderr is no terminal here: log lines
    assert "download weights.bin: 3/3 MiB (100%)" in caplog.text


def test_a_job_reads_the_file_its_download_record_names_not_one_found_again(tmp_path, monkeypatch):
    """The record names a pre-placed copy elsewhere; the config, the environment and the cache name
    others: the job's config points at the recorded copy (its sha256 entry is not a resource)."""
    from i2sb.atomic import write_json
    from i2sb.config import config_from_dict
    from i2sb.downloads import with_recorded_files

    recorded, configured = tmp_path / "placed" / "masks.npz", tmp_path / "configured.npz"
    recorded.parent.mkdir()
    recorded.write_bytes(b"recorded")
    configured.write_bytes(b"configured")
    monkeypatch.setenv("I2SB_FREEFORM_MASKS", str(configured))
    write_json(
        tmp_path / "masks.json",
        {"freeform_masks": str(recorded), "freeform_masks_sha256": "0" * 64},
    )
    cfg = config_from_dict(
        {"downloads": {"freeform_masks": str(configured), "cache_dir": str(tmp_path)}}
    )
    job = with_recorded_files(cfg, [tmp_path / "masks.json"])
    assert job.downloads.freeform_masks == str(recorded)
    assert job.mask_options()["masks_path"] == str(recorded)  # what sampling and training open
    assert (
        fetch("freeform_masks", job.downloads.freeform_masks, job.downloads.cache_dir) == recorded
    )
    assert job.downloads.cache_dir == str(tmp_path) and with_recorded_files(cfg, []) == cfg


def test_a_recorded_file_that_is_gone_names_the_record(tmp_path):
    from i2sb.atomic import write_json
    from i2sb.config import config_from_dict
    from i2sb.downloads import with_recorded_files

    write_json(tmp_path / "fid.json", {"fid_reference": str(tmp_path / "gone.npz")})
    with pytest.raises(DownloadError, match=r"fid\.json: fid_reference is recorded at .*gone\.npz"):
        with_recorded_files(config_from_dict({}), [tmp_path / "fid.json"])


def test_a_download_record_names_each_file_with_its_stat_and_hash(tmp_path):
    """Planning reads the stat; the hash is what the record says the jobs read."""
    from i2sb.config import config_from_dict
    from i2sb.downloads import fetch_to_record

    placed = tmp_path / "ref.npz"
    placed.write_bytes(b"placed")
    cfg = config_from_dict({"downloads": {"fid_reference": str(placed)}})
    record = fetch_to_record(["fid_reference"], cfg.downloads, tmp_path / "fid.json")
    assert record == {
        "fid_reference": str(placed),
        "fid_reference_sha256": hashlib.sha256(b"placed").hexdigest(),
        "fid_reference_identity": {"bytes": 6, "mtime_ns": placed.stat().st_mtime_ns},
    }


def test_a_recorded_file_replaced_in_place_or_gone_is_a_changed_record(tmp_path):
    import os

    from i2sb.atomic import write_json
    from i2sb.downloads import record_files
    from i2sb.planning import recorded_files_changed

    placed, record = tmp_path / "stats.npz", tmp_path / "record.json"
    placed.write_bytes(b"placed")
    assert not recorded_files_changed(record)  # not written yet: its job runs anyway
    record_files({"fid_val_stats": placed}, record)
    assert not recorded_files_changed(record)
    stat = placed.stat()
    placed.write_bytes(b"others")  # same size, and dated back: only the stat's mtime tells
    os.utime(placed, ns=(stat.st_atime_ns - 10**9, stat.st_mtime_ns - 10**9))
    assert recorded_files_changed(record)
    record_files({"fid_val_stats": placed}, record)
    assert not recorded_files_changed(record)
    placed.unlink()
    assert recorded_files_changed(record)
    # written before stats were recorded: only a gone file tells (else everything after reruns)
    write_json(record, {"fid_reference": str(record), "fid_reference_sha256": "0" * 64})
    assert not recorded_files_changed(record)
    write_json(record, {"fid_reference": str(placed), "fid_reference_sha256": "0" * 64})
    assert recorded_files_changed(record)
    record.write_text("{")
    assert recorded_files_changed(record)  # unreadable: written again


def test_the_placed_fid_val_stats_record_sets_the_evaluate_key(tmp_path):
    from i2sb.config import config_from_dict
    from i2sb.downloads import PlacedFileMissing, record_files, with_recorded_files

    placed = tmp_path / "stats.npz"
    placed.write_bytes(b"placed")
    record_files({"fid_val_stats": placed}, tmp_path / "record.json")
    cfg = config_from_dict({"evaluate": {"fid_val_stats": "elsewhere.npz"}})
    job = with_recorded_files(cfg, [tmp_path / "record.json"])
    assert job.evaluate.fid_val_stats == str(placed) and job.downloads == cfg.downloads
    with pytest.raises(PlacedFileMissing, match=r"evaluate\.fid_val_stats: .*gone\.npz is not"):
        record_files({"fid_val_stats": tmp_path / "gone.npz"}, tmp_path / "other.json")
