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


QUESTIONS: list[Callable[[Results], Finding]] = [_weights, _choice]


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
