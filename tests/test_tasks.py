"""Built-in tasks and user tasks: data splits, models, the offline MNIST-1D generator, loading by name."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lrlab.errors import ConfigError
from lrlab.tasks import TASKS, Task, load_task


@pytest.mark.parametrize("name", sorted(TASKS))
def test_builtin_task_has_a_fixed_split_and_a_working_model(name: str) -> None:
    task = load_task(name)
    assert isinstance(task, Task)
    assert task.description and task.info
    assert len(task.x_train) == len(task.y_train) > len(task.x_val) == len(task.y_val) > 0
    torch.manual_seed(0)
    model = task.make_model()
    output = model(task.x_train[:3])
    loss = task.loss_fn(output, task.y_train[:3])
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert task.accuracy_fn is not None and 0 <= float(task.accuracy_fn(output, task.y_train[:3])) <= 1
    again = load_task(name)
    assert torch.equal(again.x_val, task.x_val) and torch.equal(again.y_train, task.y_train)


def test_mnist1d_is_generated_offline_and_leaves_the_global_rngs_alone() -> None:
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    task = load_task("mnist1d-mlp")
    assert (random.random(), np.random.rand()) == expected
    assert task.x_train.shape == (4000, 40) and task.x_val.shape == (1000, 40)
    assert "get_dataset_args" in task.info["dataset"] and len(task.info["data_sha256"]) == 64


def test_charlm_records_its_corpus_and_has_both_layer_norms() -> None:
    post, pre = load_task("charlm-transformer"), load_task("charlm-transformer-pre")
    assert len(post.info["corpus_sha256"]) == 64 and post.info["python_version"]
    assert '"norm": "post"' in post.info["model_args"] and '"norm": "pre"' in pre.info["model_args"]
    assert post.optimizer.name == "adamw"


def test_user_task_from_module_function() -> None:
    task = load_task("examples.my_task:make_task")
    assert task.name == "two-spirals" and task.x_train.shape == (2000, 2)


@pytest.mark.parametrize(("name", "classifies"), [("sine", False), ("deep_digits", True)])
def test_held_out_example_tasks_train(name: str, classifies: bool) -> None:
    from lrlab.runs import RunSpec
    from lrlab.trainer import train

    task = load_task(f"examples.held_out_tasks:{name}")
    metrics = train(task, RunSpec("onecycle()", 0, 2, task.batch_size, task.optimizer))
    assert metrics.diverged_step is None and metrics.epochs[-1]["val_loss"] < metrics.train_loss[0]
    assert (metrics.epochs[-1]["val_acc"] is not None) == classifies


@pytest.mark.parametrize(("name", "message"), [
    ("mnist1d-mpl", "did you mean 'mnist1d-mlp'"),
    ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
    ("examples.my_task:nothing", "has no function 'nothing'"),
    ("examples.my_task:make_model", "returned Sequential, expected lrlab.tasks.Task or lrlab.tasks.LoaderTask"),
])
def test_bad_task_names_give_one_line(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_task(name)
    assert message in str(error.value) and "\n" not in str(error.value)
