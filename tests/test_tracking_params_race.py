"""A param batch refused because a concurrent writer of the same key logged it first (MLflow writes a
param once): equal values are that writer's identical rows and pass; a different value is an error."""

from types import SimpleNamespace

import pytest
from mlflow.entities import Param
from mlflow.exceptions import MlflowException

from i2sb.tracking.store import _log_params


class RacedClient:
    """log_batch refuses the first batch after 'another writer' stored ``stored``; records batches."""

    def __init__(self, stored):
        self.stored, self.batches = dict(stored), []

    def log_batch(self, run_id, params):
        if not self.batches:
            self.batches.append(None)
            raise MlflowException("UNIQUE constraint failed: params.key, params.run_uuid")
        self.batches.append([p.key for p in params])
        self.stored.update({p.key: p.value for p in params})

    def get_run(self, run_id):
        return SimpleNamespace(data=SimpleNamespace(params=dict(self.stored)))


def test_params_a_concurrent_writer_logged_identically_pass_and_the_rest_are_logged():
    client = RacedClient({"task": "jpeg-10"})
    _log_params(client, "r", [Param("task", "jpeg-10"), Param("nfe", "2")])
    assert client.batches == [None, ["nfe"]] and client.stored == {"task": "jpeg-10", "nfe": "2"}


def test_a_param_stored_with_another_value_is_an_error():
    client = RacedClient({"task": "jpeg-5"})
    with pytest.raises(MlflowException, match="UNIQUE"):
        _log_params(client, "r", [Param("task", "jpeg-10")])
