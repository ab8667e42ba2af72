"""The instruments the demo runs and the report shows: their entry points, looked up lazily.

Each instrument lives in its own module and exposes one entry point (returning a JSON-able dict
in bits) and plot functions `plot_*(result, path)`, as fixed in the cross-team contracts. This
module names them and imports them only when asked, so a build that lacks an instrument still
runs everything else and can say which instrument is missing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Instrument:
    """One instrument: where its entry point and its plot functions live."""

    name: str  # also the demo step's name and the stem of its JSON file
    title: str
    module: str
    entry: str
    plots: tuple[str, ...]
    keys: tuple[str, ...]  # top-level keys of the result that the contract makes mandatory

    @property
    def entry_point(self) -> str:
        return f"{self.module}.{self.entry}"


# name, title, module, entry point, plot functions, mandatory result keys (all from contracts.md)
_TABLE = [
    ("compression", "compression against classical compressors", "bitlens.compress.compare",
     "compare_compressors", "plot_compression", "input_bytes rows"),
    ("surprisal", "surprisal and entropy", "bitlens.measures.surprisal",
     "measure_surprisal", "plot_surprisal",
     "bits_per_byte entropy_bits_per_byte bytes most_surprising least_surprising"),
    ("prequential", "prequential code vs two-part code", "bitlens.measures.prequential",
     "measure_prequential", "plot_prequential",
     "uniform_bits prequential_bits two_part_bits final_model_bits information_in_weights_bits "
     "bytes bits_per_byte"),
    ("dynamics", "token-class dynamics", "bitlens.measures.dynamics",
     "measure_dynamics", "plot_dynamics", "classes rho1_proportions tokens"),
    ("capacity", "capacity in bits per parameter", "bitlens.measures.capacity",
     "measure_capacity", "plot_capacity", "models reference_bits_per_parameter"),
    ("lens", "logit lens and tuned lens", "bitlens.measures.lens",
     "measure_lens", "plot_lens", "layers"),
    ("probes", "MDL probes per layer", "bitlens.measures.probes",
     "measure_probes", "plot_probes", "properties"),
    ("offspring", "offspring selection and distillation", "bitlens.offspring.compare",
     "compare_strategies", "plot_strategies", "strategies distillation"),
    ("collapse_replace", "model collapse, each generation replacing the data",
     "bitlens.offspring.collapse", "run_collapse", "plot_collapse", "mode generations"),
    ("collapse_accumulate", "model collapse, each generation adding to the data",
     "bitlens.offspring.collapse", "run_collapse", "plot_collapse", "mode generations"),
    ("evolution", "evolution of curation policies", "bitlens.evolve.run",
     "run_evolution", "plot_fitness plot_pareto", "generations pareto"),
    ("generalisation", "generalisation gap and its bound", "bitlens.measures.generalisation",
     "measure_generalisation", "plot_generalisation", "points"),
]

INSTRUMENTS: dict[str, Instrument] = {
    name: Instrument(name, title, module, entry, tuple(plots.split()), tuple(keys.split()))
    for name, title, module, entry, plots, keys in _TABLE
}


def load_attr(module: str, attr: str) -> Callable | None:
    """`module.attr`, or None when that module (or the attribute) is not part of this build.

    Only the absence of the named module itself counts as missing: an import error raised from
    inside an existing module (a broken dependency, a bug) propagates, so it is not mistaken
    for an instrument that has not been built yet.
    """
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and (module == e.name or module.startswith(e.name + ".")):
            return None
        raise
    return getattr(mod, attr, None)


def entry_point(instrument: Instrument) -> Callable | None:
    """The instrument's entry point, or None when it is missing from this build."""
    return load_attr(instrument.module, instrument.entry)


def plot_functions(instrument: Instrument) -> list[Callable | None]:
    """The instrument's plot functions (None for each one missing from this build)."""
    return [load_attr(instrument.module, name) for name in instrument.plots]
