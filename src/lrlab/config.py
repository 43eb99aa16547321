"""What is asked: an experiment's config (task × schedules × seeds), validated, and bound to its task.

:func:`config_from` assembles a config from a YAML file, command-line overrides and ``--schedules`` specs, and
validates it (:func:`parse_config`: one line naming the field on a mistake). :func:`prepare` loads the task
and returns the :class:`Experiment`: the optimizer and the horizon every run shares, computed once, and its
runs. How a sweep is run is :mod:`lrlab.runner`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from lrlab.devices import check_device
from lrlab.errors import ConfigError, short_repr
from lrlab.runs import RunSpec, horizon_for
from lrlab.spec import Horizon, SpecError, build, parse
from lrlab.tasks import DEFAULT_TASK

if TYPE_CHECKING:
    from lrlab.tasks import LoaderTask, OptimizerDefaults, Task

# The study lrlab grew from: four classic schedules and warmup, against a constant-LR baseline.
DEFAULT_SCHEDULES: dict[str, str] = {
    "constant": "constant()",
    "step": "step(every_epochs=10, gamma=0.1)",
    "cosine": "cosine()",
    "plateau": "plateau(patience=2, factor=0.5)",
    "onecycle": "onecycle()",
    "warmup-cosine": "warmup(epochs=2) >> cosine()",
}
DEFAULT_SEEDS = 5
#: the largest seed: torch.manual_seed takes up to 2**64 - 1, the store's INTEGER column up to 2**63 - 1
MAX_SEED = 2**63 - 1


class OptimizerConfig(BaseModel):
    """Optimizer overrides; anything left out comes from the task's defaults (every number finite)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: Literal["sgd", "adam", "adamw", "sgd-schedulefree", "adamw-schedulefree"] | None = None
    lr: float | None = Field(default=None, gt=0)
    momentum: float | None = Field(default=None, ge=0, lt=1)
    nesterov: bool | None = None
    weight_decay: float | None = Field(default=None, ge=0)
    betas: tuple[float, float] | None = None


class TuneConfig(BaseModel):
    """How ``peak_lr: tune`` tunes each schedule's peak LR (:mod:`lrlab.tuner`): a grid of ``per_decade`` LRs per
    decade over ``[min_lr, max_lr]`` (default: the LR range test's bracket), ``seeds`` seeds per LR, widened at
    most ``max_widen`` times while the best LR sits at an edge, ``refine``d around the pick (two LRs at half the
    spacing), with ``halving`` (successive halving, for long runs) or every grid run trained to the end."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    min_lr: float | None = Field(default=None, gt=0)
    max_lr: float | None = Field(default=None, gt=0)
    per_decade: int = Field(default=4, ge=1, le=12)
    seeds: int = Field(default=3, ge=1, le=50)
    max_widen: int = Field(default=4, ge=0, le=10)
    refine: bool = True
    halving: bool = False

    @model_validator(mode="after")
    def _bracket_valid(self) -> TuneConfig:
        if (self.min_lr is None) != (self.max_lr is None):
            raise ValueError("expected both min_lr and max_lr, or neither (the LR range test's bracket)")
        if self.min_lr is not None and self.max_lr is not None and self.min_lr > self.max_lr:
            raise ValueError(f"expected min_lr <= max_lr, got {self.min_lr} > {self.max_lr}")
        return self


class ExperimentConfig(BaseModel):
    """An experiment: which task, how long, which optimizer, which seeds, which schedules (name -> spec).

    ``epochs`` and ``batch_size`` default to the task's own. ``seeds`` is a count N (seeds 0..N-1) or a
    list. ``target_acc`` is the validation accuracy that time-to-target counts epochs to. ``peak_lr`` sets
    the optimizer's LR, which every schedule's LR parameters default to (OneCycle's max_lr, a warmup's target,
    cosine's start); ``auto`` takes it from the LR range test (:mod:`lrlab.finder`), run once per results
    directory; ``tune`` gives every schedule its own peak LR, the best of a grid of real runs (``tune:``
    says how; :mod:`lrlab.tuner`). ``peak_lrs`` sets the peak LR of named schedules (name -> LR), ``stop_steps``
    stops named schedules' runs after that many updates of their horizon (successive halving). ``backend``
    says where the runs train (:mod:`lrlab.executors`): ``local`` (this machine), ``dask`` (the Dask scheduler at
    ``address``, ``tcp://HOST:PORT``, else a local cluster) or ``ray`` (the Ray cluster at ``address``,
    ``HOST:PORT``, else a local one); neither changes the results. ``device`` is the torch
    device (``auto``: CUDA when present, else the CPU; :mod:`lrlab.devices`) and ``precision`` ``fp32``, or
    ``bf16``/``fp16`` autocast (with a gradient scaler for fp16 on CUDA).
    """

    model_config = ConfigDict(extra="forbid")
    task: str = DEFAULT_TASK
    title: str | None = None
    epochs: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    seeds: int | list[int] = DEFAULT_SEEDS
    schedules: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SCHEDULES))
    target_acc: float | None = Field(default=None, gt=0, le=1)
    peak_lr: float | str | None = None
    peak_lrs: dict[str, float] = Field(default_factory=dict)
    stop_steps: dict[str, int] = Field(default_factory=dict)
    tune: TuneConfig = TuneConfig()
    divergence_factor: float = Field(default=10.0, gt=1)
    trainer: Literal["auto", "sequential", "vectorized"] = "auto"
    max_members: int | None = Field(default=None, ge=1)
    backend: Literal["local", "dask", "ray"] = "local"
    address: str | None = None
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    @field_validator("device")
    @classmethod
    def _device_valid(cls, value: str) -> str:
        try:
            return check_device(value)
        except ConfigError:
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps") from None

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError("expected a count >= 1 or a list of seeds")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("expected a non-empty list of distinct seeds")
        if isinstance(value, list) and not all(0 <= seed <= MAX_SEED for seed in value):
            raise ValueError(f"expected seeds from 0 to {MAX_SEED} (2**63 - 1)")
        if isinstance(value, int) and value > MAX_SEED + 1:
            raise ValueError(f"expected a count of at most {MAX_SEED + 1} (seeds 0 to 2**63 - 1)")
        return value

    @field_validator("peak_lr")
    @classmethod
    def _peak_lr_valid(cls, value: float | str | None) -> float | str | None:
        if value is None or value in ("auto", "tune") or (isinstance(value, float) and 0 < value < math.inf):
            return value
        raise ValueError("expected a number > 0, 'auto' or 'tune'")

    @field_validator("address")
    @classmethod
    def _address_needs_a_cluster(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("backend", "local") == "local":
            raise ValueError("an address is for a cluster: expected backend 'dask' or 'ray' with it "
                             "(--backend dask, --backend ray)")
        return value

    @model_validator(mode="after")
    def _per_schedule_valid(self) -> ExperimentConfig:
        for field_name, values in (("peak_lrs", self.peak_lrs), ("stop_steps", self.stop_steps)):
            for name in values:
                if name not in self.schedules:
                    raise ValueError(f"{field_name} names {short_repr(name)}, which is not a schedule: expected one "
                                     f"of {short_repr(list(self.schedules), 200)}")
        for name, lr in self.peak_lrs.items():
            if not 0 < lr < math.inf:
                raise ValueError(f"peak_lrs.{name}={lr!r}: expected a number > 0")
        for name, step in self.stop_steps.items():
            if step < 1:
                raise ValueError(f"stop_steps.{name}={step!r}: expected a number of updates >= 1")
        return self

    @field_validator("schedules")
    @classmethod
    def _schedules_valid(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("expected at least one schedule")
        for name in value:
            shown = repr(name[:40]) + ("..." if len(name) > 40 else "")
            if not name.strip():
                raise ValueError(f"the schedule name {shown} is empty: expected a name such as warmup-cosine")
            if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):  # ESC, newline, tab...: not for terminals
                raise ValueError(f"the schedule name {shown} has a control character: expected printable text")
        return value

    def seed_list(self) -> Sequence[int]:
        """The seeds in order (a ``range`` for a count: nothing is allocated per seed)."""
        return range(self.seeds) if isinstance(self.seeds, int) else list(self.seeds)

    def run_count(self) -> int:
        """Runs in the sweep: every schedule × every seed."""
        return len(self.schedules) * len(self.seed_list())

    def identity(self) -> dict[str, Any]:
        """The parts that must not change between a run and its resumption (what a results directory holds)."""
        return self.model_dump(exclude={"seeds", "schedules", "peak_lrs", "stop_steps", "title", "target_acc",
                                        "trainer", "max_members", "backend", "address", "device"})


def _pydantic_error_line(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    return f"{field}={short_repr(first.get('input'))} is invalid: {first['msg'].removeprefix('Value error, ')}"


def parse_config(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a config mapping; raise :class:`ConfigError` with one line naming the field on a mistake."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_error_line(exc)) from None


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader, stricter: no aliases (a config needs none, and they make "billion laughs" bombs),
    no duplicate keys (YAML would keep the last one silently, dropping a schedule of the same name)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases (*{event.anchor}) are not allowed in a config, line "
                                 f"{event.start_mark.line + 1}")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.YAMLError(f"duplicate key {short_repr(key)}, line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a mapping (validated later, after command-line overrides).

    A config is as powerful as code: its ``task:`` and any ``fn(path=module:attr)`` spec import that module.
    """
    name = short_repr(str(path))
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_ConfigLoader)  # a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"config={name} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config={name} is not UTF-8 text (byte {exc.start}): expected a YAML file") from None
    except RecursionError:
        raise ConfigError(f"config={name} is nested too deeply: expected a flat YAML mapping") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config={name} is not valid YAML: {short_repr(str(exc).splitlines()[0], 200)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config={name} is invalid: expected a mapping of keys (task, epochs, schedules...)")
    return data



def named_schedules(texts: Sequence[str]) -> dict[str, str]:
    """``--schedules`` values -> ``{name: canonical spec}``.

    ``name=spec`` names a schedule when the part before the first ``=`` has no ``(`` (so ``cosine(min_lr=0)``
    is a spec, ``cos=cosine(min_lr=0)`` a named one); otherwise the name is the spec's canonical text.
    """
    named: dict[str, str] = {}
    for text in texts:
        name, sep, rest = text.partition("=")
        if sep and "(" not in name and not name.strip():
            raise ConfigError(f"--schedules {text!r} is invalid: the name before '=' is empty: "
                              "write name=spec, or the spec alone")
        if sep and "(" not in name:
            name, spec_text = name.strip(), rest
        else:
            name, spec_text = "", text
        spec = str(parse(spec_text))
        name = name or spec
        if name in named:
            raise ConfigError(f"--schedules {text!r} is invalid: a schedule named {name!r} is already given")
        named[name] = spec
    return named


def config_from(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                schedules: Sequence[str] = ()) -> ExperimentConfig:
    """The validated config: the YAML file at ``path`` (or none), with ``overrides`` (a key whose value is None
    is left out) and the ``--schedules`` specs (:func:`named_schedules`) written over its keys."""
    data = load_config(path) if path else {}
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    if schedules:
        data["schedules"] = named_schedules(schedules)
    return parse_config(data)


@dataclass(frozen=True)
class Experiment:
    """A validated config bound to its task: the optimizer and the horizon every run shares, and the runs.

    Build it with :func:`prepare` (or :meth:`bind`); the horizon is computed once, here.
    """

    config: ExperimentConfig
    task: Task | LoaderTask
    optimizer: OptimizerDefaults
    horizon: Horizon
    peak_lrs: Mapping[str, float] = field(default_factory=dict)  # schedule name -> its own peak LR
    device: str = "cpu"  # resolved (:func:`lrlab.devices.resolve_device`)

    @classmethod
    def bind(cls, config: ExperimentConfig, task: Task | LoaderTask, peak_lr: float | None = None) -> Experiment:
        """``config`` on ``task``: the task's optimizer defaults with the config's overrides (and ``peak_lr``, the
        optimizer LR, when given) applied; epochs and batch size the config's, else the task's; the device
        resolved (ConfigError for one this machine lacks)."""
        from lrlab.devices import resolve_device
        from lrlab.tasks import OptimizerDefaults

        overrides = config.optimizer.model_dump(exclude_none=True)
        if peak_lr is not None:
            overrides["lr"] = peak_lr
        optimizer = OptimizerDefaults(**{**task.optimizer.__dict__, **overrides})
        first = RunSpec("", 0, config.epochs or task.epochs, _batch_size(config, task), optimizer)
        return cls(config, task, optimizer, horizon_for(task, first), dict(config.peak_lrs),
                   resolve_device(config.device))

    def with_peak_lr(self, lr: float) -> Experiment:
        """The same experiment with ``lr`` as the optimizer's (peak) LR."""
        return Experiment.bind(self.config, self.task, lr)

    def with_peak_lrs(self, lrs: Mapping[str, float]) -> Experiment:
        """The same experiment with each named schedule at its own peak LR (the config's ``peak_lrs`` win)."""
        return replace(self, peak_lrs={**lrs, **self.config.peak_lrs})

    def runs(self) -> Iterator[tuple[str, RunSpec]]:
        """``(schedule name, run)`` for every schedule × seed, seeds inner; a schedule with its own peak LR
        (:attr:`peak_lrs`) runs with it as the optimizer's LR; one with a stop step (``config.stop_steps``) trains
        only that many updates of its horizon."""
        epochs, batch_size = self.config.epochs or self.task.epochs, _batch_size(self.config, self.task)
        for name, spec in self.config.schedules.items():
            optimizer = self.optimizer if name not in self.peak_lrs else replace(self.optimizer, lr=self.peak_lrs[name])
            stop_step = self.config.stop_steps.get(name)
            for seed in self.config.seed_list():
                yield name, RunSpec(spec, seed, epochs, batch_size, optimizer, self.config.divergence_factor,
                                    self.device, self.config.precision, stop_step)


def _batch_size(config: ExperimentConfig, task: Task | LoaderTask) -> int:
    """Examples per step: the config's, else the task's (a LoaderTask's loaders decide theirs: 0 when unsaid)."""
    return config.batch_size or task.batch_size or 0


def _check_loader_task(config: ExperimentConfig, task: LoaderTask) -> None:
    """A LoaderTask's loaders and ``make_optimizer`` decide what the config cannot change: refuse those keys."""
    if config.batch_size is not None:
        raise ConfigError(f"batch_size={config.batch_size} is invalid for task {task.name!r}: its train_batches "
                          "decide the batch size: expected no batch_size")
    fixed = sorted(config.optimizer.model_dump(exclude_none=True).keys() - {"lr"})
    if fixed:
        raise ConfigError(f"optimizer.{fixed[0]} is invalid for task {task.name!r}: its make_optimizer builds the "
                          "optimizer: expected only optimizer.lr (or --peak-lr)")


def prepare(config: ExperimentConfig) -> Experiment:
    """Load the task and check that a batch fits its training set and every schedule builds for this horizon
    (one line per mistake)."""
    from lrlab.tasks import load_task
    from lrlab.tasks.loop import LoaderTask

    task = load_task(config.task)
    if isinstance(task, LoaderTask):
        _check_loader_task(config, task)
    experiment = Experiment.bind(config, task, config.peak_lr if isinstance(config.peak_lr, float) else None)
    batch_size = config.batch_size or task.batch_size
    if not isinstance(task, LoaderTask) and batch_size > len(task.x_train):
        raise ConfigError(f"batch_size={batch_size} is invalid for task {task.name!r}: expected at most "
                          f"{len(task.x_train)}, the training set's size")
    for name, spec in config.schedules.items():  # the seed does not change the horizon: one check per schedule
        try:
            build(spec, experiment.horizon)
        except SpecError as exc:
            raise ConfigError(f"schedules.{name}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"schedules.{name}={spec!r} is invalid: {exc}") from None
    return experiment
