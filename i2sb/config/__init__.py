"""Typed configuration, built once from config.yaml and validated.

``model``: the frozen dataclasses (every default); ``load``: schema validation, coercion,
cross-field checks and file I/O; ``choices``: the choice lists, read from the light tables.
Every public name is re-exported here (``from i2sb.config import Config``). Imports neither torch
nor mlflow: the Snakefile imports it.
"""

from i2sb.config.choices import CHOICES
from i2sb.config.load import (
    SCHEMA_PATH,
    ConfigError,
    coerce_values,
    config_from_dict,
    deep_merge,
    field_paths,
    key_choices,
    load_config,
    resolved_schema,
    save_config,
    schema_errors,
)
from i2sb.config.model import (
    DEFAULT_ARTIFACT_ROOT,
    DEFAULT_TRACKING_URI,
    BridgeConfig,
    CheckpointsConfig,
    Config,
    DataConfig,
    DemoDataConfig,
    DownloadConfig,
    EvaluateConfig,
    NetworkConfig,
    SampleConfig,
    TrackingConfig,
    TrainConfig,
    TrainResources,
    to_plain,
)

__all__ = [
    "CHOICES",
    "DEFAULT_ARTIFACT_ROOT",
    "DEFAULT_TRACKING_URI",
    "SCHEMA_PATH",
    "BridgeConfig",
    "CheckpointsConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "DemoDataConfig",
    "DownloadConfig",
    "EvaluateConfig",
    "NetworkConfig",
    "SampleConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrainResources",
    "coerce_values",
    "config_from_dict",
    "deep_merge",
    "field_paths",
    "key_choices",
    "load_config",
    "resolved_schema",
    "save_config",
    "schema_errors",
    "to_plain",
]
