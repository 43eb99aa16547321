"""lrlab inside the trainers people already use, and its results in their tools (optional extras).

- :mod:`~lrlab.integrations.specs`: a spec string to a scheduler for an optimizer (no extra needed);
- :mod:`~lrlab.integrations.lightning`: ``configure_optimizers`` for any spec or drop-in class, a callback that
  feeds a spec's plateau its metric, and one that records a run into an lrlab store
  (``pip install 'lrlab[lightning]'``);
- :mod:`~lrlab.integrations.hf_trainer`: the Hugging Face ``Trainer``'s ``optimizers=(optimizer, scheduler)``
  and a callback that feeds a spec's plateau ``eval_loss`` (``pip install 'lrlab[hf]'``);
- :mod:`~lrlab.integrations.tensorboard`: a store's runs as TensorBoard event files
  (``lrlab export DIR --tensorboard OUT``, ``pip install 'lrlab[tensorboard]'``).

docs/integrations.md shows each in use. Nothing is re-exported here: each module imports its library.
"""
