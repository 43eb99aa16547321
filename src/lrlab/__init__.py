"""lrlab: a learning-rate laboratory for PyTorch.

Exact, composable schedules (:mod:`lrlab.schedules`), a torch adapter (:class:`ScheduledLR`), and drop-in
replacements for ``torch.optim.lr_scheduler``'s classes.
"""

from lrlab.adapter import ScheduledLR
from lrlab.controllers import Plateau
from lrlab.errors import ConfigError

__version__ = "0.1.0"

__all__ = ["ConfigError", "Plateau", "ScheduledLR", "__version__"]
