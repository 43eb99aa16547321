"""MNIST-1D (Greydanus 2020), generated offline: 4000 train / 1000 validation signals of length 40, 10 classes.

The ``mnist1d`` package makes the data from its templates with a fixed seed; its ``get_dataset()`` would
download a pickle, so only ``make_dataset`` is used. ``make_dataset`` reseeds the global ``random`` and
``numpy`` RNGs, so their state is saved and restored around it.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from importlib.metadata import version

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import Tensor

from lrlab.tasks.base import tensors_sha256


@lru_cache(maxsize=1)
def _generate() -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, str]]:
    args = get_dataset_args()
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x_train = torch.from_numpy(data["x"]).float()
    y_train = torch.from_numpy(data["y"]).long()
    x_val = torch.from_numpy(data["x_test"]).float()
    y_val = torch.from_numpy(data["y_test"]).long()
    dataset_args = {k: v for k, v in vars(args).items() if k != "url"}
    info = {
        "dataset": "mnist1d.data.make_dataset(get_dataset_args())",
        "dataset_args": json.dumps(dataset_args, sort_keys=True),
        "mnist1d_version": version("mnist1d"),
        "data_sha256": tensors_sha256(x_train, y_train, x_val, y_val),
    }
    return x_train, y_train, x_val, y_val, info


def load_mnist1d() -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, str]]:
    """MNIST-1D as ``(x_train (4000, 40) float32, y_train (4000,) int64, x_val (1000, 40), y_val (1000,), info)``.

    Generated once per process (about 1 s) and cached; each call returns fresh copies of the tensors, so a
    caller that modifies them in place cannot change what the next caller gets.
    """
    *tensors, info = _generate()
    x_train, y_train, x_val, y_val = (t.clone() for t in tensors)
    return x_train, y_train, x_val, y_val, dict(info)
