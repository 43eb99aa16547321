"""The experiment config: validation (one line naming the field), YAML loading, binding to the task."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrlab.config import config_from, load_config, parse_config, prepare
from lrlab.errors import ConfigError


def small(**overrides: object) -> dict:
    config = {"task": "digits-mlp", "epochs": 2, "seeds": 2, "schedules": {"constant": "constant()",
                                                                          "cosine": "cosine()"}}
    return {**config, **overrides}


# ---- config validation: one line naming the field ---------------------------------------------------------

@pytest.mark.parametrize(("config", "field"), [
    (small(epoch=3), "epoch="),
    (small(epochs="many"), "epochs='many'"),
    (small(seeds=0), "seeds=0"),
    (small(optimizer={"name": "rmsprop"}), "optimizer.name='rmsprop'"),
    (small(optimizer={"lr": -1}), "optimizer.lr=-1"),
    (small(schedules={}), "schedules={}"),
    (small(seeds=[99999999999999999999]), "seeds=[99999999999999999999]"),  # beyond torch.manual_seed and SQLite
    (small(seeds=[-1]), "seeds=[-1]"),
    (small(optimizer={"lr": float("inf")}), "optimizer.lr=inf"),
    (small(optimizer={"momentum": float("nan")}), "optimizer.momentum=nan"),
])
def test_config_mistakes_name_the_field(config: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(config)
    assert str(error.value).startswith(field) and "\n" not in str(error.value)


@pytest.mark.parametrize(("name", "expected"), [
    ("", "the schedule name '' is empty"),
    ("  ", "the schedule name '  ' is empty"),
    ("\x1b[31mred", r"the schedule name '\x1b[31mred' has a control character"),
    ("two\nlines", r"the schedule name 'two\nlines' has a control character"),
    ("\x9b" + "x" * 100, r"the schedule name '\x9b" + "x" * 39 + "'... has a control character"),
])
def test_schedule_names_are_printable_and_not_empty(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(small(schedules={"constant": "constant()", name: "cosine()"}))
    message = str(error.value)
    assert message.startswith("schedules=") and expected in message
    assert "\x1b" not in message and "\n" not in message and "\x9b" not in message


def test_cjk_and_emoji_schedule_names_are_fine() -> None:
    assert list(parse_config(small(schedules={"余弦 🚀": "cosine()"})).schedules) == ["余弦 🚀"]


@pytest.mark.parametrize(("schedules", "expected"), [
    ({"bad": "cosine(min_lr=)"}, "schedules.bad:"),
    ({"typo": "cosin()"}, "cosine"),
    ({"long-warmup": "warmup(epochs=5) >> cosine()"}, "schedules.long-warmup:"),
])
def test_schedules_are_checked_against_the_run_length_before_training(schedules: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        prepare(parse_config(small(schedules=schedules)))
    assert expected in str(error.value)


def test_a_batch_larger_than_the_training_set_is_refused_naming_both_sizes() -> None:
    with pytest.raises(ConfigError, match=r"^batch_size=5000 is invalid for task 'digits-mlp': expected at most "
                                          r"1437, the training set's size$"):
        prepare(parse_config(small(batch_size=5000)))


def test_a_huge_seed_count_is_not_expanded_into_a_list() -> None:
    assert len(parse_config(small(seeds=10**15)).seed_list()) == 10**15


def test_yaml_config_errors(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "broken.yaml").write_text("task: [unclosed\n")
    for name, message in [("list.yaml", "expected a mapping"), ("broken.yaml", "not valid YAML"),
                          ("missing.yaml", "cannot be read")]:
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / name)


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)) + "seeds: *j\n"


@pytest.mark.parametrize(("text", "message"), [
    (ALIAS_BOMB, r"aliases \(\*a\) are not allowed in a config, line 2"),
    ("task: digits-mlp\nschedules:\n  fast: cosine()\n  fast: onecycle()\n", r"duplicate key 'fast', line 4"),
    ("epochs: 3\nepochs: 4\n", r"duplicate key 'epochs', line 2"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"is not UTF-8 text \(byte 0\)"),
    ("task: caf\u00e9\x00\n", r"not valid YAML"),
    ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", r"nested too deeply"),
], ids=["alias-bomb", "duplicate-schedule", "duplicate-key", "binary", "control-character", "deep"])
def test_hostile_yaml_is_one_line(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_error_lines_abridge_huge_values() -> None:
    nested: list = ["x"] * 9
    for _ in range(12):  # 9**13 leaves: its full repr would not fit in memory
        nested = [nested] * 9
    with pytest.raises(ConfigError) as error:
        parse_config(small(schedules=nested))
    assert str(error.value).startswith("schedules=[[[[...]") and len(str(error.value)) < 300


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("examples/*.yaml")), ids=lambda p: p.name)
def test_shipped_example_configs_are_valid(path: Path) -> None:
    prepare(parse_config(load_config(path)))


def test_the_horizon_is_computed_once_with_the_peak_lr() -> None:
    experiment = prepare(parse_config(small(epochs=3, peak_lr=0.05)))
    per_epoch = len(experiment.task.x_train) // experiment.task.batch_size
    assert (experiment.horizon.total_steps, experiment.horizon.base_lr) == (3 * per_epoch, 0.05)
    assert experiment.with_peak_lr(0.2).horizon.base_lr == 0.2 and experiment.with_peak_lr(0.2).optimizer.lr == 0.2


def test_config_from_writes_flags_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("task: digits-mlp\nepochs: 4\nseeds: 3\n")
    config = config_from(path, {"epochs": 2, "seeds": None}, ["c=cosine()"])
    assert (config.epochs, config.seeds, config.schedules) == (2, 3, {"c": "cosine()"})
