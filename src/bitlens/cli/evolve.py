"""`bitlens evolve`: evolve data-curation policies (locally or on Ray)."""

from __future__ import annotations

from pathlib import Path

import click

from bitlens.cli.common import corpus_option, emit_json, json_option, seed_option, show_progress
from bitlens.evolve.backends import BACKENDS
from bitlens.evolve.fitness import FITNESS_FORMS
from bitlens.evolve.strategy import STRATEGIES


@click.command("evolve")
@corpus_option
@click.option(
    "--out",
    "out_dir",
    required=True,
    metavar="RUN_DIR",
    help="Run directory: lineage.sqlite, offspring weights, parent, result.json, figures.",
)
@click.option(
    "--parent",
    "parent_dir",
    default=None,
    metavar="RUN_DIR",
    help="A trained parent model (default: train a tiny one into RUN_DIR/parent).",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    default="local",
    show_default=True,
    help="local: process pool; ray: Ray tasks; serial: this process.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Evaluations in flight at once (processes or Ray tasks, 1 thread each).",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDR",
    help="Join an existing Ray cluster (default: start Ray on this machine).",
)
@click.option(
    "--population",
    type=click.IntRange(min=1),
    default=None,
    help="Survivors μ = children λ per generation (default 8; 3 with --quick).",
)
@click.option(
    "--generations",
    type=click.IntRange(min=1),
    default=None,
    help="Generations including the random first one (default 6; 2 with --quick).",
)
@click.option(
    "--strategy",
    type=click.Choice(list(STRATEGIES)),
    default=None,
    help="es: (μ+λ) with tournament selection (default); random: random search control; "
    "optuna-tpe: Optuna's TPE sampler (ask/tell; needs bitlens[evolve]). Same evaluations each.",
)
@click.option(
    "--fitness",
    type=click.Choice(FITNESS_FORMS),
    default=None,
    help="gain-at-budget (default): held-out bits/byte gained over random selection, every genome "
    "at the same token budget; penalised: that gain − λ × TFLOPs of cost.",
)
@click.option(
    "--cost-weight",
    "cost_weight",
    type=click.FloatRange(min=0.0),
    default=None,
    help="λ of --fitness penalised, in bits/byte per TFLOP (default 1).",
)
@click.option(
    "--budget-tokens",
    type=click.IntRange(min=1),
    default=None,
    help="The token budget of --fitness gain-at-budget (default: the middle of the budget range).",
)
@click.option(
    "--lineage",
    is_flag=True,
    default=None,
    help="The best offspring of each generation becomes the next generation's parent.",
)
@click.option(
    "--reevaluate/--no-reevaluate",
    default=None,
    help="Score the survivors again on each new generation's seed and select on those "
    "fresh scores (default; fitness is noisy, this stops lucky genomes from "
    "surviving forever).",
)
@seed_option
@click.option(
    "--budget-flops",
    type=float,
    default=None,
    help="Stop once finished evaluations used this many FLOPs (offspring + parent + reference).",
)
@click.option(
    "--time-limit",
    type=float,
    default=None,
    help="Stop after this many wall-clock seconds (summed over resumes).",
)
@click.option(
    "--quick", is_flag=True, help="A small run (tiny offspring, small budgets, 3 × 2 genomes) for tests."
)
@click.option("--resume", is_flag=True, help="Continue the run in RUN_DIR; finished evaluations are kept.")
@json_option
def evolve_cmd(
    corpus,
    out_dir,
    parent_dir,
    backend,
    workers,
    ray_address,
    population,
    generations,
    strategy,
    fitness,
    cost_weight,
    budget_tokens,
    lineage,
    reevaluate,
    seed,
    budget_flops,
    time_limit,
    quick,
    resume,
    json_out,
):
    """Evolve data-curation policies under selective pressure.

    A genome is a curation policy (selection score and keep ratio, document or token level,
    synthetic share, temperature, top-p, distillation target, offspring size, token budget).
    Fitness, in bits/byte (higher is better), is the offspring's held-out gain over a random
    selection at a fixed token budget, or that gain − λ × TFLOPs of cost (--fitness). Survivors
    are ranked on the mean of all of a genome's evaluations. Prints one line per generation and
    the winner with its 95% interval, and the Pareto front of held-out bits/byte vs FLOPs; writes
    fitness.png, pareto.png, lineage.png (+ .svg) into RUN_DIR.

    JSON keys: fitness {form, formula, unit, budget_tokens | lambda_bits_per_byte_per_tflop},
    winner {genome, n_evaluations, fitness, gain_bits_per_byte, heldout_bits_per_byte: {estimate,
    ci95, n_seeds}}, generations [{generation, best_fitness, mean_fitness, best_genome, survivors
    [{id, mean_fitness, n}], ...}], pareto [{heldout_bits_per_byte, flops, genome, ...}],
    evaluations, best, totals, splits (byte ranges), heldout_split, stopped.
    """
    from bitlens.config import override
    from bitlens.data import load_corpus
    from bitlens.evolve.plots import plot_fitness, plot_lineage, plot_pareto
    from bitlens.evolve.run import EvolveConfig, run_evolution
    from bitlens.runs import refuse_hf

    refuse_hf(parent_dir, "evolve promotes offspring to parents, so --parent")

    cfg = override(
        EvolveConfig.quick() if quick else EvolveConfig.full(),
        population=population,
        generations=generations,
        seed=seed,
        strategy=strategy,
        fitness=fitness,
        cost_weight=cost_weight,
        budget_tokens=budget_tokens,
        lineage=lineage,
        reevaluate=reevaluate,
    )
    result = run_evolution(
        out_dir,
        cfg,
        corpus=load_corpus(corpus),
        backend=backend,
        workers=workers,
        resume=resume,
        progress=show_progress(),
        budget_flops=budget_flops,
        time_limit=time_limit,
        ray_address=ray_address,
        parent_dir=parent_dir,
    )
    r = result.to_dict()
    out = Path(out_dir)
    plot_fitness(r, out / "fitness.png")
    plot_pareto(r, out / "pareto.png")
    plot_lineage(r, out / "lineage.png")
    if json_out != "-":
        _print_summary(r, out)
    emit_json(r, json_out)


def _print_summary(r: dict, out: Path) -> None:
    for g in r["generations"]:
        best = "—" if g["best_fitness"] is None else f"{g['best_fitness']:.4g}"
        mean = "—" if g["mean_fitness"] is None else f"{g['mean_fitness']:.4g}"
        bpb = "—" if g["best_heldout_bits_per_byte"] is None else f"{g['best_heldout_bits_per_byte']:.4f}"
        click.echo(
            f"generation {g['generation']}: best fitness {best}, mean {mean}, "
            f"best held-out {bpb} bits/byte, {g['failed']} failed of {g['evaluations']}"
            + (f" ({g['reevaluations']} survivors re-scored)" if g["reevaluations"] else "")
        )
    if (w := r["winner"]) is not None:
        f, (lo, hi) = w["fitness"]["estimate"], w["fitness"]["ci95"]
        click.echo(
            f"winner: fitness {f:.4g} [{lo:.4g}, {hi:.4g}] bits/byte ({r['fitness']['form']}), "
            f"mean of {w['fitness']['n_seeds']} evaluations: {w['genome']}"
        )
    for p in r["pareto"]:
        click.echo(f"pareto: {p['heldout_bits_per_byte']:.4f} bits/byte at {p['flops']:.3g} FLOPs")
    t = r["totals"]
    click.echo(
        f"{t['done']} evaluations ({t['failed']} failed), {t['flops']:.3g} FLOPs, "
        f"{t['wall_seconds']:.0f} s" + (f"; stopped: {r['stopped']}" if r["stopped"] else "") + f" → {out}"
    )
