"""The rendezvous is bounded: a rank whose peers never come fails within the configured timeout, naming the master."""

import json
import socket
import time

import pytest
import torch

from i2sb.config import config_from_dict
from i2sb.distributed import (
    DistContext,
    RendezvousFailed,
    close_distributed,
    init_distributed,
    rank_report,
)

TIMEOUT_S = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(monkeypatch, rank: int, port: int) -> None:
    for name, value in {
        "RANK": str(rank),
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)


@pytest.mark.parametrize("rank", [0, 1], ids=["master-alone", "master-missing"])
def test_a_rendezvous_that_cannot_complete_fails_within_the_timeout(monkeypatch, rank):
    """Rank 0 waits for a second rank that never starts; rank 1 looks for a master that never starts."""
    port = free_port()
    rank_env(monkeypatch, rank, port)
    started = time.monotonic()
    with pytest.raises(RendezvousFailed) as raised:
        init_distributed("cpu", rendezvous_timeout_s=TIMEOUT_S)
    elapsed = time.monotonic() - started
    close_distributed()
    message = str(raised.value)
    assert f"MASTER_ADDR=127.0.0.1 MASTER_PORT={port}" in message
    assert "train.resources.rendezvous_timeout_s" in message
    assert f"rank {rank} of 2" in message
    assert TIMEOUT_S * 0.5 <= elapsed < TIMEOUT_S + 15, elapsed


def test_missing_master_address_is_a_clear_error(monkeypatch):
    rank_env(monkeypatch, 1, free_port())
    monkeypatch.delenv("MASTER_ADDR")
    with pytest.raises(RendezvousFailed, match="MASTER_ADDR and MASTER_PORT must be set"):
        init_distributed("cpu", rendezvous_timeout_s=TIMEOUT_S)


def test_the_timeout_is_a_config_key_with_a_documented_default():
    cfg = config_from_dict({"train": {"resources": {"rendezvous_timeout_s": 7.5}}})
    assert cfg.train.resources.rendezvous_timeout_s == 7.5
    assert config_from_dict({}).train.resources.rendezvous_timeout_s == 300
    with pytest.raises(Exception, match="rendezvous_timeout_s"):
        config_from_dict({"train": {"resources": {"rendezvous_timeout_s": 0}}})


def test_rank_report_of_a_single_process_names_its_host_and_weights():
    net = torch.nn.Linear(2, 2)
    (entry,) = rank_report(DistContext(), net)
    assert entry["rank"] == 0 and entry["host"] == socket.gethostname()
    assert len(entry["weights_sha256"]) == 64
    json.dumps(entry)
    with torch.no_grad():
        net.weight[0, 0] += 1
    assert rank_report(DistContext(), net)[0]["weights_sha256"] != entry["weights_sha256"]
