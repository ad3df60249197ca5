"""Config: defaults, validation errors that name the key, and JSON round trip."""

import json
import re
from pathlib import Path

import pytest
import yaml

from i2sb.config import (
    Config,
    ConfigError,
    config_from_dict,
    field_paths,
    load_config,
    save_config,
)
from i2sb.planning import check_inputs, missing_inputs
from i2sb.samplers import find_sampler

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_config_is_valid_and_documents_every_key():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg.data.kind == "demo"
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())

    def leaves(d, prefix=""):
        for k, v in d.items():
            path = f"{prefix}.{k}" if prefix else k
            yield from leaves(v, path) if isinstance(v, dict) else [path]

    assert sorted(leaves(raw)) == sorted(field_paths())


def test_empty_config_gives_all_defaults():
    assert config_from_dict({}) == Config()


@pytest.mark.parametrize(
    "values, pattern",
    [
        ({"train": {"lr": "fast"}}, r"train\.lr.*'fast'.*number"),
        ({"train": {"iterations": 0}}, r"train\.iterations.*minimum 1"),
        ({"network": {"preset": "huge"}}, r"network\.preset.*'huge'.*tiny"),
        ({"sample": {"precison": "fp16"}}, r"sample.*precison"),
        ({"tasks": ["jpeg-5", "denoise"]}, r"tasks.*'denoise'.*valid tasks"),
        ({"nfe": [1000]}, r"nfe.*1000.*\[1, bridge.interval - 1 = 999\]"),
        (
            {"train": {"batch_size": 10, "microbatch": 4}},
            r"train\.batch_size.*multiple.*microbatch",
        ),
        ({"data": {"image_size": 60}}, r"data\.image_size.*multiple of 8"),
        ({"train": {"iterations": 4.5}}, r"train\.iterations.*4\.5.*integer"),
        ({"train": {"iterations": "many"}}, r"train\.iterations.*'many'.*integer"),
        ({"partitions": "2.5"}, r"partitions.*'2\.5'.*integer"),
        ({"network": {"adm_init": "yes please"}}, r"network\.adm_init.*boolean"),
        ({"bridge": {"t0": 1.0, "T": 0.5}}, r"bridge\.t0.*must be smaller than bridge\.T"),
        ({"train": {"validate_nfe": 1000}}, r"train\.validate_nfe.*smaller than bridge\.interval"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(values, pattern):
    with pytest.raises(ConfigError, match=re.compile(pattern, re.S)):
        config_from_dict(values)


def test_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match="tasksx"):
        config_from_dict({"tasksx": []})


def test_missing_file_and_bad_yaml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(bad)


def test_round_trip_through_json(tmp_path):
    cfg = config_from_dict({"tasks": ["jpeg-5"], "nfe": [3, 7], "bridge": {"beta_max": 0.5}})
    save_config(cfg, tmp_path / "config.json")
    again = config_from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert again == cfg


def test_task_table_fills_beta_max_and_ot_ode_unless_overridden():
    cfg = Config()
    assert (cfg.beta_max("jpeg-5"), cfg.ot_ode("jpeg-5")) == (0.3, False)
    assert (cfg.beta_max("inpaint-center"), cfg.ot_ode("inpaint-center")) == (1.0, True)
    forced = config_from_dict({"bridge": {"beta_max": 0.7, "ot_ode": False}})
    assert (forced.beta_max("blur-uni"), forced.ot_ode("blur-uni")) == (0.7, False)


def test_missing_input_folders_and_files_are_named_by_key(tmp_path):
    cfg = config_from_dict({"data": {"kind": "imagefolder", "root": "/path/to/imagenet"},
                            "downloads": {"adm_checkpoint": str(tmp_path / "adm.pt")}})  # fmt: skip
    problems = missing_inputs(cfg)
    assert problems[0].startswith("data.root: /path/to/imagenet is not a folder")
    assert problems[1] == f"downloads.adm_checkpoint: {tmp_path / 'adm.pt'} is not a file"
    with pytest.raises(ConfigError, match="missing inputs in my.yaml"):
        check_inputs(cfg, "my.yaml")


def test_an_image_folder_needs_both_splits_and_paired_data_may_be_csv(tmp_path):
    (tmp_path / "train").mkdir()
    folder = config_from_dict({"data": {"kind": "imagefolder", "root": str(tmp_path)}})
    assert missing_inputs(folder) == [f"data.root: {tmp_path} has no val/"]
    (tmp_path / "val.csv").write_text("clean,degraded\n")
    paired = config_from_dict(
        {"tasks": ["paired"], "data": {"kind": "paired", "root": str(tmp_path)}}
    )
    assert missing_inputs(paired) == []
    assert missing_inputs(Config()) == []  # the demo makes its own images


@pytest.mark.parametrize(
    ("tasks", "kind", "root", "problem"),
    [
        (["paired"], "demo", "", "tasks: paired does not fit data.kind = 'demo'"),
        (["sr4x-pool", "paired"], "paired", "pairs", "tasks: sr4x-pool does not fit data.kind = 'paired'"),
        (["paired"], "paired", "", "data.root: paired data needs its folder"),
    ],
)  # fmt: skip
def test_paired_data_and_the_paired_task_go_together_with_a_folder_before_planning(
    tmp_path, tasks, kind, root, problem
):
    """Training refused the misfit only when its job ran, after conversions and queueing."""
    for split in ("train", "val"):
        (tmp_path / f"{split}.csv").write_text("clean,degraded\n")
    data = {"kind": kind, "root": str(tmp_path) if root else ""}
    (found,) = missing_inputs(config_from_dict({"tasks": tasks, "data": data}))
    assert found.startswith(problem)


def test_a_choice_list_is_read_from_its_one_tuple(monkeypatch):
    import i2sb.config
    from i2sb.config.choices import CHOICES

    with pytest.raises(ConfigError, match=r"data\.mask_source.*'auto', 'published', 'generated'"):
        config_from_dict({"data": {"mask_source": "drawn"}})
    monkeypatch.setitem(i2sb.config.CHOICES, "mask_sources", (*CHOICES["mask_sources"], "drawn"))
    assert config_from_dict({"data": {"mask_source": "drawn"}}).data.mask_source == "drawn"


def test_the_network_presets_are_the_preset_tables_rows():
    """The schema's network.preset choices, the config's comment and the builder's keywords all
    come from i2sb/preset_table.py: a new row is a valid config value."""
    from i2sb.config import key_choices
    from i2sb.preset_table import PRESETS, preset_kwargs

    assert key_choices("network", "preset") == list(PRESETS)
    comment = next(
        line.partition("#")[2]
        for line in (ROOT / "config" / "config.yaml").read_text().splitlines()
        if line.strip().startswith("preset:")
    )
    assert all(re.search(rf"\b{re.escape(name)}\b", comment) for name in PRESETS), comment
    for name in PRESETS:
        assert config_from_dict({"network": {"preset": name}}).network.preset == name
        assert preset_kwargs(name) == PRESETS[name]


def test_unambiguous_values_are_coerced_to_the_declared_type():
    cfg = config_from_dict(
        {
            "train": {"iterations": 4.0, "lr": "1e-3", "grad_clip": "null", "batch_size": "1e1",
                      "microbatch": 5},
            "data": {"image_size": 32.0},
            "partitions": "2",
            "nfe": ["10", 100.0],
            "tasks": "jpeg-5",
            "network": {"adm_init": "false"},
            "bridge": {"ot_ode": "True", "beta_max": "0.5"},
        }
    )  # fmt: skip
    assert cfg.train.iterations == 4 and type(cfg.train.iterations) is int
    assert cfg.train.lr == 1e-3 and cfg.train.grad_clip is None and cfg.train.batch_size == 10
    assert type(cfg.data.image_size) is int and cfg.partitions == 2 and cfg.nfe == (10, 100)
    assert cfg.tasks == ("jpeg-5",) and cfg.network.adm_init is False
    assert cfg.bridge.ot_ode is True and cfg.bridge.beta_max == 0.5


def test_the_documented_snakemake_override_parses_to_typed_values():
    from snakemake.cli import parse_config

    values = parse_config(
        ["tasks=[jpeg-5]", "nfe=[10,100]", "data={root: /data/x, image_size: 32}"]
    )
    cfg = config_from_dict(values)
    assert cfg.tasks == ("jpeg-5",) and cfg.nfe == (10, 100) and cfg.data.image_size == 32


def test_set_overrides_with_an_exponent_give_an_integer_before_anything_is_written(tmp_path):
    from i2sb.cli._overrides import parse_overrides

    cfg = load_config(ROOT / "config" / "config.yaml", parse_overrides(["train.iterations=1e3"]))
    assert cfg.train.iterations == 1000 and type(cfg.train.iterations) is int


def test_sampler_entries_give_stable_labels_and_round_trip():
    cfg = config_from_dict(
        {"tasks": ["sr4x-pool", "inpaint-center"],
         "samplers": [{"name": "ddpm"}, {"name": "implicit", "eta": "0.5"}, {"name": "implicit"},
                      {"name": "cddb", "step_size": 1}, {"name": "dbim"}, {"name": "dbim", "order": "3"}]}
    )  # fmt: skip
    assert [s.label for s in cfg.samplers] == [
        "ddpm",
        "implicit-eta0.5",
        "implicit-eta0",
        "cddb-lam1",
        "dbim-o2",
        "dbim-o3",
    ]
    assert find_sampler(cfg.samplers, "implicit-eta0").describe()["options"] == {"eta": 0.0}
    assert find_sampler(cfg.samplers, "dbim-o3").describe()["options"] == {"order": 3}
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert [s.label for s in Config().samplers] == ["ddpm"]
    with pytest.raises(ValueError, match="no sampler labelled 'ddim'"):
        find_sampler(cfg.samplers, "ddim")


@pytest.mark.parametrize(
    "samplers, pattern",
    [
        ([{"name": "ddim"}], r"samplers\.0\.name.*'ddim'.*one of 'ddpm', 'implicit', 'cddb', 'dbim'"),
        ([{"name": "dbim", "order": 4}], r"samplers\.0\.order.*got 4, expected one of 2, 3 \(dbim\)"),
        ([{"name": "dbim", "order": 2.5}], r"samplers\.0\.order.*got 2\.5, expected one of 2, 3"),
        ([{"name": "ddpm", "order": 2}], r"samplers\[0\].*ddpm takes no option order"),
        ([{"name": "implicit", "eta": 1.5}], r"samplers\.0\.eta.*1\.5.*\[0, 1\]"),
        ([{"name": "ddpm", "eta": 0.0}], r"samplers\[0\].*ddpm takes no option eta"),
        ([{"name": "implicit", "step_size": 1.0}], r"samplers\[0\].*implicit takes no option step_size"),
        ([{"name": "implicit", "lam": 1}], r"samplers\.0.*'lam' was unexpected"),
        ([{"eta": 0.0}], r"samplers\.0.*'name' is a required property"),
        ([], r"samplers.*non-empty"),
        ([{"name": "implicit"}, {"name": "implicit", "eta": 0}], r"samplers\[1\].*implicit-eta0 is already samplers\[0\]"),
    ],
)  # fmt: skip
def test_bad_sampler_entries_name_the_entry(samplers, pattern):
    with pytest.raises(ConfigError, match=re.compile(pattern, re.S)):
        config_from_dict({"tasks": ["sr4x-pool"], "samplers": samplers})


def test_cddb_listed_on_a_task_without_a_forward_operator_names_the_task():
    pattern = r"samplers\[1\].*sampler cddb on task jpeg-10: no differentiable forward operator"
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict({"tasks": ["sr4x-pool", "jpeg-10"],
                          "samplers": [{"name": "ddpm"}, {"name": "cddb", "tasks": ["jpeg-10"]}]})  # fmt: skip


def test_a_sampler_entry_may_run_on_its_own_tasks_and_nfes():
    cfg = config_from_dict({"tasks": ["sr4x-pool", "jpeg-10"], "nfe": [999],
                            "samplers": [{"name": "ddpm"},
                                         {"name": "cddb", "nfe": ["10", 20], "tasks": "sr4x-pool"}]})  # fmt: skip
    cddb = cfg.samplers[1]
    assert cddb.nfe == (10, 20) and cddb.tasks == ("sr4x-pool",) and cddb.label == "cddb-lam1"
    assert (
        cddb.runs_on("sr4x-pool")
        and not cddb.runs_on("jpeg-10")
        and cfg.samplers[0].runs_on("jpeg-10")
    )
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(
        ConfigError,
        match=r"samplers\[1\]' in <dict>: tasks \['blur-uni'\] are not in the config's tasks",
    ):
        config_from_dict({"tasks": ["sr4x-pool"], "samplers": [{"name": "ddpm"},
                                                               {"name": "implicit", "tasks": ["blur-uni"]}]})  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"'samplers\[0\].nfe'.*1000 is outside \[1, bridge.interval - 1"
    ):
        config_from_dict({"samplers": [{"name": "implicit", "nfe": [1000]}]})


def _float_keys(cls=Config, prefix=""):
    """Every dotted key whose declared type is float (or float | None), from the dataclasses."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, key = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(kind):
            yield from _float_keys(kind, key + ".")
        elif float in (kind, *typing.get_args(kind)):
            yield key


def _nested(key, value):
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


FLOAT_KEYS = sorted(_float_keys())


def test_the_float_keys_include_the_ones_that_hang_or_blacken():
    assert {"train.lr", "bridge.beta_max", "bridge.t0", "bridge.T", "train.ema_decay",
            "train.grad_clip", "train.resources.rendezvous_timeout_s"} <= set(FLOAT_KEYS)  # fmt: skip


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "nan", "inf", True])
def test_every_float_key_refuses_non_finite_values_and_wrong_types_in_one_line(key, value):
    """YAML .nan/.inf arrive as floats, snakemake --config / --set as text: both refused by name."""
    with pytest.raises(ConfigError) as caught:
        config_from_dict(_nested(key, value))
    message, shown = str(caught.value), value if value is True else float(value)
    assert "\n" not in message and f"config key {key!r}: got {shown!r}" in message
    assert ("expected type " if value is True else "expected a finite number") in message


@pytest.mark.parametrize("option", ["eta", "step_size"])
@pytest.mark.parametrize("value", [float("nan"), "inf"])
def test_sampler_options_must_be_finite_whatever_their_definition(option, value):
    name = {"eta": "implicit", "step_size": "cddb"}[option]
    with pytest.raises(ConfigError, match=rf"samplers\.0\.{option}': got \w+, expected a finite"):
        config_from_dict({"tasks": ["sr4x-pool"], "samplers": [{"name": name, option: value}]})
