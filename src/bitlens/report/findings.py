"""The report's opening Findings: the four questions of bitlens, each answered with a number, its
95 % interval and seed count, and a one-line caveat, read from the demo folder's JSON files.

An answer is only as strong as the step behind it: a missing step is said to be missing, a figure
without an interval (one seed) says so, and an interval that includes 0 is worded "no effect
detected". Text is returned raw; the page escapes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bitlens.report.text import effect_words, fmt
from bitlens.report.text import interval_text as interval

Results = Mapping[str, dict | None]


@dataclass(frozen=True)
class Finding:
    question: str
    answer: str  # the number(s), with interval and seed count
    caveat: str  # one line: what limits the answer
    section: str  # the anchor of the section the answer comes from


def _bpb(d: dict) -> str:
    return interval(d["estimate"], d["ci95"], d["n_seeds"], "bits/byte")


def _missing(steps: str) -> str:
    return f"Not measured in this folder: the {steps} step has not run."


def _weights(r: Results) -> Finding:
    """What do the weights keep?"""
    q = "What do the weights keep?"
    pre, cap = r.get("prequential"), r.get("capacity")
    if pre is None and cap is None:
        return Finding(q, _missing("prequential and capacity"), "", "prequential")
    parts, caveats = [], []
    if pre is not None:
        parts.append(
            f"The trained model's weights code to a {fmt(pre['weights_file_bytes'])}-byte file "
            f"({fmt(pre['weight_bits_per_parameter'])} bits/parameter); against the prequential code "
            f"they hold {fmt(pre['information_in_weights_heldout_bits'])} bits that help on held-out "
            "text (one seed)."
        )
    if cap is not None:
        parts.append(
            "Memorisation capacity: "
            + interval(
                cap["slope_bits_per_parameter"], cap.get("slope_ci95"), cap.get("n_seeds"), "bits/parameter"
            )
            + " (Morris et al. 2025: 3.6)."
        )
        if not cap.get("all_saturated"):
            caveats.append("the capacity runs did not saturate, so the slope is a lower bound")
    if pre is not None:
        caveats.append("the information in the weights is a difference of two code lengths, not a bound")
    return Finding(
        q, " ".join(parts), "; ".join(caveats).capitalize() + ".", "prequential" if pre else "capacity"
    )


def _choice(r: Results) -> Finding:
    """Does the parent's choice carry information?"""
    q = "Does the parent's choice carry information?"
    off = r.get("offspring")
    if off is None:
        return Finding(q, _missing("offspring"), "", "offspring")
    parent = [
        s
        for s in off["strategies"]
        if s.get("gain_over_random_bits_per_byte") and s["score"] not in ("random", "bigram")
    ]
    if not parent:
        return Finding(q, "No parent-scored selector ran in this folder.", "", "offspring")
    best = max(parent, key=lambda s: s["gain_over_random_bits_per_byte"]["estimate"])
    g = best["gain_over_random_bits_per_byte"]
    gb = best.get("gain_over_bigram_bits_per_byte") or {}
    answer = (
        f"The best parent selector ({best['name']}) gains "
        + interval(g["estimate"], g.get("ci95"), g.get("n_seeds"), "bits/byte")
        + " over a random mask of the same size on the test split: "
        + effect_words(g.get("ci95"), "the choice carries information", "the choice hurts")
        + "."
    )
    if gb:
        answer += (
            " Over the bigram (no-parent) scorer: "
            + interval(gb["estimate"], gb.get("ci95"), gb.get("n_seeds"), "bits/byte")
            + "."
        )
    p = g.get("p_holm")
    caveat = (
        f"The best of {len(parent)} selectors, Holm-adjusted p = {fmt(p)}."
        if p is not None
        else f"The best of {len(parent)} selectors, chosen after the fact; one seed gives no test."
    )
    return Finding(q, answer, caveat, "offspring")


def _generated(r: Results) -> Finding:
    """Does generated data distil or collapse, and can a born-again offspring beat its parent?"""
    q = "Does generated data distil or collapse, and can a born-again offspring beat its parent?"
    two, born, col = r.get("distillation"), r.get("born_again"), r.get("collapse")
    if two is None and born is None and col is None:
        return Finding(q, _missing("distillation, born_again and collapse"), "", "distillation")
    parts, caveats = [], []
    if two is not None:
        effects = {e["effect"]: e for e in two["effects"]}
        for name, what in (
            ("labels", "Soft labels (soft − hard)"),
            ("inputs", "Parent-written inputs (synthetic − real)"),
        ):
            e = effects.get(name)
            if e is not None:
                parts.append(f"{what}: {_bpb(e)}, {e['reading']}.")
    if born is not None and born["generations"]:
        imp = born["generations"][0]["improvement_vs_parent_bits_per_byte"]
        parts.append(
            "A born-again offspring improves on its parent by "
            + interval(imp["estimate"], imp["ci95"], imp["n_seeds"], "bits/byte")
            + f" ({imp['reading']})."
        )
    if col is not None:
        for arm in col["arms"]:
            if arm["mode"] == "replace":
                c = arm["change"]["heldout_bits_per_byte"]
                parts.append(
                    "Training only on the previous generation's samples (replace, top-p "
                    f"{fmt(float(arm['top_p']))}) "
                    f"changes held-out bits/byte by {interval(c['estimate'], c['ci95'], c['n_seeds'])} over "
                    f"{col['generations']} generations: {c['reading']}."
                )
                break
        caveats.append("short trainings on the bundled corpus; the benchmarks hold the 10-seed studies")
    else:
        caveats.append("the benchmarks hold the 10-seed studies")
    return Finding(
        q, " ".join(parts), caveats[0].capitalize() + ".", "distillation" if two or born else "collapse"
    )


def _evolved(r: Results) -> Finding:
    """Can the loop be evolved?"""
    q = "Can the loop be evolved?"
    evo = r.get("evolution")
    if evo is None:
        return Finding(q, _missing("evolution"), "", "evolution")
    w = evo.get("winner")
    if not w or not w.get("gain_bits_per_byte"):
        return Finding(q, "The run finished no generation, so it has no winner.", "", "evolution")
    g = w["gain_bits_per_byte"]
    n_evals = len(evo.get("evaluations", [])) or None
    answer = (
        f"The winning policy of {fmt(n_evals)} evaluations gains "
        + interval(g["estimate"], g.get("ci95"), g.get("n_seeds"), "bits/byte")
        + " over a random-selection offspring of the same budget on the validation split "
        + f"({effect_words(g.get('ci95') if (g.get('n_seeds') or 0) > 1 else None, 'a gain', 'a loss')})."
    )
    caveat = (
        "Whether search beats random search is not measured here (one search arm): see "
        "benchmarks/evolve_study.py; a winner's in-sample gain is biased upwards."
    )
    return Finding(q, answer, caveat, "evolution")


QUESTIONS: list[Callable[[Results], Finding]] = [_weights, _generated, _choice, _evolved]


def findings(results: Results) -> list[Finding]:
    """The Findings, in the order of the questions (each step's JSON dict, or None). A result that
    lacks a key an answer reads gives that answer as such, not a broken page."""
    out = []
    for answer in QUESTIONS:
        try:
            out.append(answer(results))
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
            question = (answer.__doc__ or answer.__name__).strip()
            out.append(
                Finding(
                    question,
                    f"The results do not hold what this answer reads ({type(e).__name__}: {e}).",
                    "",
                    "",
                )
            )
    return out
