"""lrlab in the Hugging Face Trainer (the real transformers + accelerate; skipped without them): a drop-in
plateau is stepped with the evaluation metric, a spec's plateau is fed by FeedPlateau (and warns without it),
and docs/integrations.md's example runs as written."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("accelerate")
transformers = pytest.importorskip("transformers")

import lrlab  # noqa: E402
from integration_docs import DOC, doc_example  # noqa: E402
from lrlab.errors import ConfigError  # noqa: E402
from lrlab.integrations.hf_trainer import FeedPlateau  # noqa: E402
from lrlab.integrations.specs import scheduler_for  # noqa: E402


class Flat(torch.nn.Module):
    """A linear model whose evaluation loss never improves (a plateau cuts at every chance)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def forward(self, x, labels):
        loss = torch.nn.functional.mse_loss(self.net(x), labels)
        return {"loss": loss if self.training else torch.ones(())}


def train(scheduler_of, tmp_path, epochs: int = 3, callbacks_of=lambda s: [], **arguments) -> torch.optim.Optimizer:
    """``epochs`` epochs of 4 steps each, evaluated after each epoch; returns the optimizer."""
    torch.manual_seed(0)
    data = [{"x": torch.randn(4), "labels": torch.randn(1)} for _ in range(32)]
    model = Flat()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = scheduler_of(optimizer)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=epochs, per_device_train_batch_size=8, eval_strategy="epoch",
        save_strategy="no", report_to="none", use_cpu=True, remove_unused_columns=False, disable_tqdm=True,
        **arguments)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, eval_dataset=data[:8],
                                   optimizers=(optimizer, scheduler), callbacks=callbacks_of(scheduler))
    trainer.train()
    return optimizer


def test_the_trainer_steps_the_drop_in_plateau_with_the_eval_metric(tmp_path, one_thread):
    """Before lrlab.ReduceLROnPlateau subclassed torch's, the Trainer called step() without the metric."""
    optimizer = train(lambda opt: lrlab.ReduceLROnPlateau(opt, patience=0, factor=0.5), tmp_path,
                      metric_for_best_model="eval_loss")
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)  # cut after evaluations 2 and 3


def test_a_spec_with_a_plateau_is_fed_by_feed_plateau(tmp_path, one_thread):
    def spec(opt):
        return scheduler_for(opt, "warmup(steps=2) >> plateau(patience=0, factor=0.5)", 12, steps_per_epoch=4)

    optimizer = train(spec, tmp_path, callbacks_of=lambda s: [FeedPlateau(s)])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)


def test_a_spec_without_feed_plateau_warns_that_it_never_cuts(tmp_path, one_thread):
    with pytest.warns(UserWarning, match="plateau controller but no metric in 10 steps"):
        optimizer = train(lambda opt: scheduler_for(opt, "plateau(patience=0)", 12, steps_per_epoch=1), tmp_path)
    assert optimizer.param_groups[0]["lr"] == 0.1


class RecordLR(transformers.TrainerCallback):
    """The first group's LR each optimizer step uses."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])


def test_one_cycle_gives_torchs_lrs_in_the_trainer(tmp_path, one_thread):
    ours, theirs = RecordLR(), RecordLR()
    train(lambda opt: lrlab.OneCycleLR(opt, max_lr=0.1, total_steps=12), tmp_path, callbacks_of=lambda s: [ours])
    train(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=12), tmp_path,
          callbacks_of=lambda s: [theirs])
    assert len(ours.lrs) == 12 and ours.lrs == pytest.approx(theirs.lrs, rel=1e-12)


def test_feed_plateau_refuses_a_scheduler_it_cannot_feed():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ConfigError, match="the Trainer feeds a ReduceLROnPlateau itself"):
        FeedPlateau(lrlab.ReduceLROnPlateau(opt))
    with pytest.raises(ConfigError, match="expected a scheduler with a plateau controller"):
        FeedPlateau(scheduler_for(opt, "cosine()", 10))


def test_the_documented_example_runs(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "doc_example"}
    exec(compile(doc_example("hf"), str(DOC), "exec"), namespace)
    assert namespace["trainer"].state.global_step == 4 * 6
