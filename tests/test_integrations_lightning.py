"""lrlab in Lightning (the real package; skipped without it): configure_optimizers for specs and drop-in
classes, plateaus fed their metric, a run recorded into a store the report reads, and docs/integrations.md's
example run as written."""

from __future__ import annotations

import pytest
import torch

L = pytest.importorskip("lightning")

import lrlab  # noqa: E402
from integration_docs import DOC, doc_example  # noqa: E402
from lrlab.cli import main  # noqa: E402
from lrlab.errors import ConfigError  # noqa: E402
from lrlab.integrations.lightning import FeedPlateau, RecordRun, configure_optimizers  # noqa: E402
from lrlab.store import Store  # noqa: E402


class Flat(L.LightningModule):
    """A linear model whose logged validation loss never improves (a plateau cuts at every chance)."""

    def __init__(self, make_scheduler, **kwargs) -> None:
        super().__init__()
        self.net, self.make_scheduler, self.kwargs = torch.nn.Linear(4, 1), make_scheduler, kwargs

    def training_step(self, batch, batch_idx):
        self.log("flat", 1.0)  # a metric logged every step, for a plateau stepped every step
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(1.0))

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        return configure_optimizers(optimizer, self.make_scheduler(optimizer), **self.kwargs)


def fit(module: L.LightningModule, epochs: int = 3, callbacks: list | None = None) -> L.Trainer:
    """``epochs`` epochs of 4 steps each, validated after each epoch."""
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=callbacks or [])
    trainer.fit(module, loader, loader)
    return trainer


@pytest.mark.parametrize(("interval", "monitor", "cuts"), [("epoch", "val_loss", 2), ("step", "flat", 11)])
def test_the_drop_in_plateau_gets_its_metric_and_cuts(interval, monitor, cuts, one_thread):
    """Before lrlab.ReduceLROnPlateau subclassed torch's, Lightning called step() without the metric."""
    module = Flat(lambda opt: lrlab.ReduceLROnPlateau(opt, patience=0, factor=0.5), interval=interval,
                  monitor=monitor)
    config = module.configure_optimizers()["lr_scheduler"]
    assert (config["interval"], config["monitor"], config["reduce_on_plateau"]) == (interval, monitor, True)
    trainer = fit(module)
    # the first value is the best; every later one (3 epochs, or 12 steps) cuts
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** cuts)


class HandWritten(Flat):
    """The dict a Lightning user writes for a plateau, without lrlab's helper: Lightning decides how to step it."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        scheduler = lrlab.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}


def test_lightning_itself_recognises_the_drop_in_plateau(one_thread):
    """Lightning passes the metric only to torch's class: before lrlab's subclassed it, step() failed."""
    trainer = fit(HandWritten(None))
    assert trainer.lr_scheduler_configs[0].reduce_on_plateau
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)


def test_a_spec_with_a_plateau_is_fed_by_feed_plateau_and_recorded(tmp_path, one_thread):
    def spec_module():
        return Flat(lambda opt: "warmup(steps=2) >> plateau(patience=0, factor=0.5)", total_steps=12,
                    steps_per_epoch=4)

    config = spec_module().configure_optimizers()["lr_scheduler"]
    assert (config["interval"], config["monitor"], "reduce_on_plateau" in config) == ("step", "val_loss", False)
    trainer = fit(spec_module(), callbacks=[FeedPlateau(), RecordRun(tmp_path, "plateau", seed=3)])
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)
    with Store(tmp_path, readonly=True) as store:
        (run,) = store.runs()
        steps, epochs = store.step_metrics(run.id), store.epoch_metrics(run.id)
    assert (run.schedule, run.spec, run.seed, run.status) == ("plateau", "plateau", 3, "done")
    assert steps["lr"] == pytest.approx([0.0, 0.05] + [0.1] * 6 + [0.05] * 4)  # cut after epochs 2 and 3
    assert steps["momentum"] == [0.9] * 12 and len(steps["train_loss"]) == 12
    assert epochs["epoch"] == [1, 2, 3] and epochs["step"] == [4, 8, 12] and epochs["val_loss"] == [1.0] * 3


def test_a_spec_without_its_feeder_warns_that_the_plateau_never_cuts(one_thread):
    module = Flat(lambda opt: "plateau(patience=0)", total_steps=12, steps_per_epoch=1)  # 10 "epochs": 10 steps
    with pytest.warns(UserWarning, match="plateau controller but no metric in 10 steps"):
        trainer = fit(module)
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("make", [lrlab.OneCycleLR, torch.optim.lr_scheduler.OneCycleLR])
def test_one_cycle_steps_per_batch_as_torch_does(make, tmp_path, one_thread):
    module = Flat(lambda opt: make(opt, max_lr=0.1, total_steps=12))
    assert module.configure_optimizers()["lr_scheduler"]["interval"] == "step"
    fit(module, callbacks=[RecordRun(tmp_path, "onecycle")])
    with Store(tmp_path, readonly=True) as store:
        lrs = store.step_metrics(store.runs()[0].id)["lr"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=12)
    expected = []
    for _ in range(12):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        reference.step()
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_other_drop_in_classes_step_per_epoch_unless_told():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    assert configure_optimizers(opt, lrlab.StepLR(opt, 2))["lr_scheduler"]["interval"] == "epoch"
    assert configure_optimizers(opt, lrlab.StepLR(opt, 2), interval="step")["lr_scheduler"]["interval"] == "step"
    with pytest.raises(ConfigError, match="total_steps=None is invalid"):
        configure_optimizers(opt, "cosine()")
    with pytest.raises(ConfigError, match="interval='batch' is invalid"):
        configure_optimizers(opt, "cosine()", total_steps=10, interval="batch")


def test_the_documented_example_runs_and_lrlab_reports_it(tmp_path, monkeypatch, one_thread, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(doc_example("lightning"), str(DOC), "exec"), {"__name__": "doc_example"})
    with Store(tmp_path / "results" / "lightning", readonly=True) as store:
        assert [(r.schedule, r.status) for r in store.runs()] == [
            ("warmup(epochs=1) >> cosine()", "done"), ("warmup(epochs=1) >> plateau(patience=0, factor=0.5)", "done")]
    assert main(["report", str(tmp_path / "results" / "lightning")]) == 0
    assert (tmp_path / "results" / "lightning" / "report.html").is_file()
