"""Numbers written for people, rounded so that float32 noise (``0.20000000949949026``) stays out of reports.

Rounded with :func:`round_floats`: ``metrics.json`` of ``tools/test.py`` and of ``tools/downstream.py`` (mmseg and
mmdet metrics, which those libraries already round to 2 decimals) and the ablation CSV; the Markdown tables and
printed summaries format their own digits. Full precision where a program reads the numbers back: MMEngine's
``vis_data/scalars.json``, ``tools/dense_probe.py``'s ``metrics.json`` (averaged over seeds with confidence
intervals by ``tools/benchmarks/synthetic_table.py``) and the rows of ``tools/analysis/ablation_table.collect``.
"""
from typing import Any

DECIMALS = 4  # decimal places of a number written for people (metrics are in percent or fractions)


def round_floats(value: Any, decimals: int = DECIMALS) -> Any:
    """``value`` with every float in it rounded to ``decimals`` places: plain floats and 0-d numpy/torch values,
    also inside dicts, lists and tuples. Other values come back unchanged."""
    if isinstance(value, dict):
        return {k: round_floats(v, decimals) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(round_floats(v, decimals) for v in value)
    if getattr(value, 'ndim', None) == 0:  # numpy scalar or 0-d tensor
        value = value.item()
    return round(value, decimals) if isinstance(value, float) else value
