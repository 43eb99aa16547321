"""``lrlab export``: a results directory's runs in other tools' formats (TensorBoard event files)."""

from __future__ import annotations

import argparse

from lrlab.cli.common import console_for


def cmd_export(args: argparse.Namespace) -> int:
    """Write every finished run of ``args.directory`` as TensorBoard event files under ``args.tensorboard``."""
    from lrlab.integrations.tensorboard import export_tensorboard

    count = export_tensorboard(args.directory, args.tensorboard)
    console_for().print(f"{count} run(s) written to {args.tensorboard}: tensorboard --logdir {args.tensorboard}",
                        soft_wrap=True)
    return 0
