"""Evolving data-curation policies: genome, (μ+λ) strategy, SQLite lineage store, backends.

Entry point: `bitlens.evolve.run.run_evolution`; figures: `bitlens.evolve.plots`.
"""
