"""The report's Findings: each answer carries its number, interval and seeds, and says plainly
when a step is missing, when there is no interval, and when an interval includes 0."""

from __future__ import annotations

from bitlens.report.findings import findings
from bitlens.report.text import effect_words
from bitlens.report.text import interval_text as interval


def _gain(estimate: float, ci: list[float] | None, n: int, p_holm: float | None = None) -> dict:
    return {"estimate": estimate, "ci95": ci, "n_seeds": n, "p_value": p_holm, "p_holm": p_holm}


def _strategy(name: str, score: str, gain: dict) -> dict:
    return {
        "name": name,
        "score": score,
        "gain_over_random_bits_per_byte": gain,
        "gain_over_bigram_bits_per_byte": gain,
    }


def test_interval_text_and_effect_words():
    assert interval(0.1234, [0.1, 0.15], 10, "bits/byte") == "0.123 [0.100, 0.150] bits/byte (10 seeds)"
    assert interval(0.5, None, 1) == "0.500 (1 seed, no interval)"
    assert effect_words([0.01, 0.2], "up", "down") == "up"
    assert effect_words([-0.3, -0.01], "up", "down") == "down"
    assert effect_words([-0.1, 0.2], "up", "down").startswith("no effect detected")
    assert effect_words(None, "up", "down") == "not tested (one seed)"


def test_every_question_is_answered_even_with_no_results():
    out = findings({})
    assert len(out) >= 2
    assert all("Not measured in this folder" in f.answer for f in out)


def test_choice_reports_the_best_parent_selector_with_its_interval_and_holm():
    offspring = {
        "strategies": [
            _strategy("random/document", "random", _gain(0.0, [0.0, 0.0], 10)),
            _strategy("bigram/document", "bigram", _gain(0.9, [0.8, 1.0], 10)),  # not a parent selector
            _strategy("surprisal/document", "surprisal", _gain(0.05, [-0.01, 0.11], 10, 0.2)),
            _strategy("rho-loss/document", "rho-loss", _gain(0.08, [0.02, 0.14], 10, 0.03)),
        ]
    }
    (choice,) = [f for f in findings({"offspring": offspring}) if f.section == "offspring"]
    assert (
        "rho-loss/document" in choice.answer and "0.080 [0.020, 0.140] bits/byte (10 seeds)" in choice.answer
    )
    assert "the choice carries information" in choice.answer
    assert "p = 0.030" in choice.caveat and "best of 2 selectors" in choice.caveat
    offspring["strategies"][3]["gain_over_random_bits_per_byte"] = _gain(0.04, [-0.02, 0.1], 10, 0.4)
    (choice,) = [f for f in findings({"offspring": offspring}) if f.section == "offspring"]
    assert "no effect detected" in choice.answer


def test_weights_answer_reads_the_weights_file_and_the_capacity_slope():
    pre = {
        "weights_file_bytes": 38441,
        "weight_bits_per_parameter": 1.288,
        "information_in_weights_heldout_bits": 13288.6,
    }
    cap = {"slope_bits_per_parameter": 0.61, "slope_ci95": [0.6, 0.62], "n_seeds": 3, "all_saturated": False}
    (w,) = [f for f in findings({"prequential": pre, "capacity": cap}) if f.question.startswith("What do")]
    assert "38,441-byte file" in w.answer and "1.288 bits/parameter" in w.answer
    assert "0.610 [0.600, 0.620] bits/parameter (3 seeds)" in w.answer
    assert "did not saturate" in w.caveat


def test_a_result_without_the_keys_gives_a_plain_answer_not_a_crash():
    (w, _, choice, _) = findings(
        {
            "prequential": {"bits": 1.0},
            "offspring": {"strategies": [{"name": "x", "gain_over_random_bits_per_byte": {"estimate": 1}}]},
        }
    )
    assert "do not hold what this answer reads" in w.answer and w.question == "What do the weights keep?"
    assert "KeyError" in choice.answer


def test_generated_data_answer_reads_the_2x2_born_again_and_collapse():
    from tests.test_report import contract_results

    r = contract_results()
    (g,) = [f for f in findings(r) if f.question.startswith("Does generated data")]
    assert (
        "Soft labels (soft − hard): -0.250 [-0.350, -0.150] bits/byte (2 seeds), soft labels lower"
        in g.answer
    )
    assert (
        "Parent-written inputs (synthetic − real): 0.350 [-0.150, 0.850] bits/byte (2 seeds), no effect"
        in g.answer
    )
    assert (
        "born-again offspring improves on its parent by 0.100 [0.050, 0.150] bits/byte (2 seeds)" in g.answer
    )
    assert (
        "(replace, top-p 1.000) changes held-out bits/byte by 0.200 [0.100, 0.300] (2 seeds) over 2"
        in g.answer
    )
    assert g.section == "distillation"


def test_evolution_answer_names_its_winner_and_what_it_cannot_say():
    gain = {"estimate": 0.04, "ci95": [-0.01, 0.09], "n_seeds": 3}
    evo = {"winner": {"gain_bits_per_byte": gain}, "evaluations": [{}] * 12}
    (e,) = [f for f in findings({"evolution": evo}) if f.question == "Can the loop be evolved?"]
    assert "of 12 evaluations gains 0.040 [-0.010, 0.090] bits/byte (3 seeds)" in e.answer
    assert "no effect detected" in e.answer and "evolve_study" in e.caveat
    one = {"estimate": 0.05, "ci95": [0.05, 0.05], "n_seeds": 1}  # a winner evaluated once
    (e,) = [
        f
        for f in findings({"evolution": {"winner": {"gain_bits_per_byte": one}}})
        if f.section == "evolution"
    ]
    assert "0.050 bits/byte (1 seed, no interval)" in e.answer and "not tested (one seed)" in e.answer
    (e,) = [f for f in findings({"evolution": {"winner": None}}) if f.section == "evolution"]
    assert "no winner" in e.answer
