"""`bitlens evolve` end to end with the real policy evaluation (tiny parent, tiny offspring)."""

import json
import sqlite3

import pytest
from tests.conftest import DATA_DIR

from bitlens.cli import main
from bitlens.determinism import deterministic
from bitlens.evolve.evaluators import PolicyEvaluator
from bitlens.evolve.genome import policy_gene_space
from bitlens.evolve.lineage import LineageStore
from bitlens.evolve.run import EvolveConfig, run_evolution
from bitlens.offspring.policy import ContextConfig, CurationPolicy, build_context, evaluate_policy
from bitlens.runs import load_run

CORPUS = DATA_DIR / "shakespeare-20k.txt"


@pytest.fixture(scope="module")
def parent_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("evolve") / "parent"
    args = ["train", "--corpus", str(CORPUS), "--out", str(out), "--preset", "tiny", "--steps", "3"]
    assert main(args) == 0
    return out


def test_policy_evolution_end_to_end_with_lineage(parent_dir, tmp_path):
    """The real evaluator on a cheap gene space; lineage mode makes offspring parents."""
    from bitlens.evolve.genome import GeneSpace, Integer, Real

    quick = policy_gene_space(quick=True)
    cheap = GeneSpace(
        tuple(
            Integer("budget_tokens", 1024, 4096, 0.15)
            if g.name == "budget_tokens"
            else Real("synthetic_share", 0.0, 0.1, 0.1)
            if g.name == "synthetic_share"
            else g
            for g in quick.genes
        )
    )
    corpus = CORPUS.read_bytes()
    ev = PolicyEvaluator(corpus, str(parent_dir), context=ContextConfig.quick(), space=cheap)
    cfg = EvolveConfig(population=2, generations=2, seed=1, lineage=True, small=True, fitness="penalised")
    r = run_evolution(tmp_path / "evo", cfg, backend="serial", evaluator=ev).to_dict()
    # 2 genomes, then 2 children + the 2 survivors scored again
    assert r["totals"]["done"] == 6, [e["error"] for e in r["evaluations"]]
    assert r["heldout_split"] == "validation" and r["splits"] == ev.data_splits().to_dict()
    assert r["splits"]["validation"]["end"] == r["splits"]["test"]["start"]
    for e in r["evaluations"]:
        cheap.check(e["genome"])
        m = e["metrics"]
        # one or two steps of a tiny model from its random init (≈ 8.2 bits/byte): not far from it
        # (on the 2 windows of the validation split that a 20 KB corpus leaves)
        assert 6.5 < e["heldout_bits_per_byte"] < 8.5
        assert m["heldout_split"] == "validation"  # evolution chooses: never on the test split
        # penalised fitness: gain over the random-selection baseline − λ·TFLOPs, never a ratio
        gain = m["baseline_bits_per_byte"] - m["heldout_bits_per_byte"]
        assert m["gain_bits_per_byte"] == gain and "fitness_unit" not in m
        assert e["fitness"] == pytest.approx(gain - cfg.cost_weight * m["flops"] / 1e12)
        assert m["improvement_vs_parent_bits_per_byte"] == pytest.approx(
            m["parent_bits_per_byte"] - m["heldout_bits_per_byte"]
        )
        assert e["flops"] >= e["tokens"] * 6e5  # a tiny model costs > 0.6 MFLOP per training token
        assert e["tokens"] >= e["genome"]["budget_tokens"]
    best0 = max((e for e in r["evaluations"] if e["generation"] == 0), key=lambda e: e["fitness"])
    assert r["generations"][1]["parent_model"] == best0["weights"]
    # lineage: generation 1's parent *is* that offspring, so it scores exactly its held-out bits
    for e in r["evaluations"]:
        if e["generation"] == 1:
            assert e["metrics"]["parent_bits_per_byte"] == best0["heldout_bits_per_byte"]
    # the engine's number is the library's number for that genome and seed (on one thread, as
    # every backend evaluates)
    first = r["evaluations"][0]
    with deterministic(1):
        direct = evaluate_policy(
            CurationPolicy.from_dict(first["genome"]),
            build_context(str(parent_dir), corpus, ContextConfig.quick()),
            first["seed"],
        )
    assert direct.heldout_bits_per_byte == first["heldout_bits_per_byte"]
    assert (
        direct.baseline_bits_per_byte - direct.heldout_bits_per_byte == first["metrics"]["gain_bits_per_byte"]
    )
    assert r["fitness"]["form"] == "penalised" and r["fitness"]["lambda_bits_per_byte_per_tflop"] == 1.0
    # the offspring used as generation 1's parent is a loadable run directory
    assert load_run(best0["weights"]).num_params() > 0


def test_evolve_refuses_an_existing_run_and_states_units(tmp_path, capsys):
    LineageStore(tmp_path / "evo" / "lineage.sqlite").close()
    assert main(["evolve", "--out", str(tmp_path / "evo"), "--quick"]) == 1
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        from bitlens.cli import cli

        cli.main(["evolve", "--help"], standalone_mode=True)
    text = capsys.readouterr().out
    assert "bits/byte" in text and "FLOPs" in text
    # the strategy choices are the registry's keys; the fitness forms are named
    assert "[es|random|optuna-tpe]" in text and "[gain-at-budget|penalised]" in text and "TFLOP" in text
    assert main(["evolve", "--out", str(tmp_path / "x"), "--strategy", "annealing"]) != 0


@pytest.mark.slow
def test_evolve_quick_serial_json_figures_and_resume(parent_dir, tmp_path, capsys):
    out = tmp_path / "evo"
    args = [
        "evolve",
        "--corpus",
        str(CORPUS),
        "--out",
        str(out),
        "--parent",
        str(parent_dir),
        "--quick",
        "--population",
        "2",
        "--generations",
        "2",
        "--backend",
        "serial",
    ]
    capsys.readouterr()
    assert main(args + ["--json", "-"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [g["generation"] for g in r["generations"]] == [0, 1]
    assert r["totals"]["done"] + r["totals"]["failed"] == 6  # 2, then 2 children + 2 re-scored
    space = policy_gene_space(quick=True)
    assert r["fitness"]["form"] == "gain-at-budget" and r["winner"]["fitness"]["n_seeds"] >= 1
    for e in r["evaluations"]:
        space.check(e["genome"])
        assert e["status"] == "done", e["error"]
        # an offspring of a 3-step parent on 8k–65k tokens: better than uniform, far from good
        assert 3.0 < e["heldout_bits_per_byte"] < 8.0
        # the default fitness: held-out gain over random selection at the pinned token budget
        assert e["genome"]["budget_tokens"] == r["fitness"]["budget_tokens"] == 23_170
        assert (
            e["metrics"]["fitness"]
            == e["fitness"]
            == pytest.approx(e["metrics"]["baseline_bits_per_byte"] - e["heldout_bits_per_byte"])
        )
        assert e["flops"] > 6 * e["tokens"] * 1e5  # a tiny model: > 0.1 MFLOP per token
    assert r["pareto"] and {"heldout_bits_per_byte", "flops", "genome"} <= set(r["pareto"][0])
    for name in ("fitness", "pareto", "lineage"):
        assert (out / f"{name}.png").exists() and (out / f"{name}.svg").exists()
    weights = [e["weights"] for e in r["evaluations"]]
    assert all((out / "offspring").exists() and w and w.startswith(str(out)) for w in weights)
    # a finished run resumes to the same result without evaluating anything again
    with sqlite3.connect(out / "lineage.sqlite") as con:
        before = con.execute("SELECT id, finished_at FROM evaluations").fetchall()
    assert main(args + ["--resume", "--json", str(tmp_path / "again.json")]) == 0
    with sqlite3.connect(out / "lineage.sqlite") as con:
        assert con.execute("SELECT id, finished_at FROM evaluations").fetchall() == before
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["evaluations"] == r["evaluations"]
    # a fresh run refuses a directory that already holds one
    assert main(args) == 1
    assert "--resume" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_evolve_quick_same_run_on_every_backend(parent_dir, tmp_path, backend, capsys):
    if backend == "ray":
        pytest.importorskip("ray")
    runs = {}
    for b in ("serial", backend):
        capsys.readouterr()
        assert (
            main(
                [
                    "evolve",
                    "--corpus",
                    str(CORPUS),
                    "--out",
                    str(tmp_path / b),
                    "--parent",
                    str(parent_dir),
                    "--quick",
                    "--backend",
                    b,
                    "--workers",
                    "2",
                    "--json",
                    "-",
                ]
            )
            == 0
        )
        r = json.loads(capsys.readouterr().out)
        runs[b] = [(e["genome"], e["fitness"], e["heldout_bits_per_byte"]) for e in r["evaluations"]]
    assert runs["serial"] == runs[backend]
