"""The schedules of other libraries, by their own names and arguments, as lrlab specs and schedulers.

:mod:`lrlab.compat.hf` (transformers' ``get_scheduler``), :mod:`lrlab.compat.timm` (``timm.scheduler``)
and :mod:`lrlab.compat.optax` (optax's schedule functions). None imports the library it mirrors: each writes
the equivalent lrlab spec (``to_spec``) and builds it, so porting a script is one import.
"""
