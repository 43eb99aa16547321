"""The run rules both trainers share (:mod:`lrlab.runs`), and that the store and report can read runs without torch."""

from __future__ import annotations

import subprocess
import sys

import torch

from lrlab.runs import MAX_LR, DataOrder, RunMetrics, batch_slice, lr_diverges


def test_max_lr_is_float32s_largest_value() -> None:
    assert MAX_LR == float(torch.finfo(torch.float32).max)
    assert not lr_diverges(MAX_LR) and lr_diverges(MAX_LR * 1.0000001) and lr_diverges(float("nan"))


def test_the_data_order_is_the_seeds_own_generator_and_full_batches() -> None:
    order = DataOrder(seed=3, n=10)
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(0)  # the global RNG does not move it
    assert order.next_epoch().tolist() == torch.randperm(10, generator=generator).tolist()
    assert order.next_epoch().tolist() == torch.randperm(10, generator=generator).tolist()
    assert [list(range(10))[batch_slice(i, 4)] for i in range(10 // 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_an_epoch_record_holds_the_mean_training_loss() -> None:
    metrics = RunMetrics()
    metrics.end_epoch(1, 3, 0.1, [1.0, 2.0, 3.0], 0.5, None)
    assert metrics.epochs == [{"epoch": 1, "step": 3, "lr": 0.1, "train_loss": 2.0, "val_loss": 0.5, "val_acc": None}]


def test_runs_and_the_store_import_without_torch() -> None:
    code = "import sys, lrlab.runs, lrlab.store, lrlab.config, lrlab.runner; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
