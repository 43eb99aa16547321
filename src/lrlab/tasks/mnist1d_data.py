"""MNIST-1D (Greydanus 2020), generated offline: signals of length 40, 10 classes, 80% train / 20% validation.

The ``mnist1d`` package makes the data from its templates with a fixed seed; its ``get_dataset()`` would
download a pickle, so only ``make_dataset`` is used. The paper's set is 5000 signals (4000 / 1000); any
``num_samples`` draws more from the same generator (a different set: the first 5000 are not kept).
``make_dataset`` reseeds the global ``random`` and ``numpy`` RNGs, so their state is saved and restored around it.
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

#: the MNIST-1D paper's number of signals (train and validation together)
PAPER_SAMPLES = 5000


@lru_cache(maxsize=2)
def _generate(num_samples: int) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, str]]:
    args = get_dataset_args()
    args.num_samples = num_samples
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
        "dataset": "mnist1d.data.make_dataset(get_dataset_args())"
                   + ("" if num_samples == PAPER_SAMPLES else f" with num_samples={num_samples}"),
        "dataset_args": json.dumps(dataset_args, sort_keys=True),
        "mnist1d_version": version("mnist1d"),
        "data_sha256": tensors_sha256(x_train, y_train, x_val, y_val),
    }
    return x_train, y_train, x_val, y_val, info


def load_mnist1d(num_samples: int = PAPER_SAMPLES) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, str]]:
    """MNIST-1D as ``(x_train (0.8 n, 40) float32, y_train (0.8 n,) int64, x_val (0.2 n, 40), y_val, info)``.

    ``num_samples`` (n) is rounded down to a multiple of 10 (the same count per class). Generated once per
    process (about 1 s per 5000 signals on one core) and cached; each call returns fresh copies of the tensors, so a
    caller that modifies them in place cannot change what the next caller gets.
    """
    *tensors, info = _generate(num_samples)
    x_train, y_train, x_val, y_val = (t.clone() for t in tensors)
    return x_train, y_train, x_val, y_val, dict(info)
