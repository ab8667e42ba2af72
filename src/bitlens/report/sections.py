"""The report's sections: for each instrument, its figures, one table and two lines reading its numbers.

A section reads only the JSON its steps wrote (`<run>/<step>.json`): the tables and readings use
only the keys the cross-team contracts fix, the figures are the instruments' own plot functions
run on the same JSON. Text is returned raw; the page escapes everything it prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bitlens.compress.compare import plot_compression
from bitlens.evolve.plots import plot_fitness, plot_pareto
from bitlens.measures.capacity import plot_capacity
from bitlens.measures.dynamics import plot_dynamics
from bitlens.measures.generalisation import plot_generalisation
from bitlens.measures.lens import plot_lens
from bitlens.measures.prequential import plot_prequential
from bitlens.measures.probes import plot_probes
from bitlens.measures.surprisal import plot_surprisal
from bitlens.offspring.compare import plot_strategies
from bitlens.report.offspring_sections import (
    collapse_reading,
    collapse_table,
    distillation_reading,
    distillation_table,
    plot_collapse_arms,
    plot_distillation,
)
from bitlens.report.plots import plot_training
from bitlens.report.text import PlotFn, Section, Table, fmt


def _relative(a: float, b: float) -> str:
    """a relative to b in words: "20% fewer bits than" or "18% more bits than"."""
    change = 100 * (a / b - 1) if b else 0.0
    return f"{abs(change):.0f}% {'fewer' if change < 0 else 'more'} bits than"


# --- Is the model a compressed encoding of its data? ---------------------------------------


_TRAIN_ROWS = [
    ("preset", "model preset"),
    ("params", "parameters"),
    ("steps", "training steps"),
    ("tokens", "training bytes (tokens)"),
    ("flops", "training FLOPs"),
    ("seconds", "training seconds"),
    ("val_bits_per_byte", "held-out bits/byte"),
    ("val_bytes", "held-out bytes"),
]


def _train_table(r: list[dict]) -> Table:
    return Table(["quantity", "value"], [[label, r[0].get(k)] for k, label in _TRAIN_ROWS])


def _train_reading(r: list[dict]) -> list[str]:
    t = r[0]
    bpb = t["val_bits_per_byte"]
    evals = [c for c in t["curve"] if c.get("val_bits_per_byte") is not None]
    trend = (
        f"held-out bits/byte went from {fmt(evals[0]['val_bits_per_byte'])} at step "
        f"{evals[0]['step']} to {fmt(bpb)} at the end"
        if len(evals) > 1
        else f"held-out bits/byte ended at {fmt(bpb)}"
    )
    return [
        f"The default {t['preset']} model ({fmt(t['params'])} parameters) codes {fmt(t['val_bytes'])} "
        f"held-out bytes at {fmt(bpb)} bits/byte, {8 / bpb:.2f}× fewer bits than the 8 bits/byte of "
        "raw bytes.",
        f"It trained on {fmt(t['tokens'])} bytes in {fmt(t['steps'])} steps ({fmt(t['seconds'])} s); "
        f"{trend}.",
    ]


def _compression_table(r: list[dict]) -> Table:
    rows = r[0]["rows"]
    extra = any("bits_per_byte_with_model" in row for row in rows)
    headers = ["compressor", "bits/byte", "output bytes", "compress s", "decompress s", "round-trip"]
    keys = ["name", "bits_per_byte", "output_bytes", "compress_seconds", "decompress_seconds", "roundtrip"]
    if extra:
        headers.append("bits/byte incl. model")
        keys.append("bits_per_byte_with_model")
    n = r[0]["input_bytes"]
    if any("network_bits" in row for row in rows) and n:
        headers.append("network alone (bits/byte)")
        rows = [
            {**row, "network_bpb": row["network_bits"] / n} if "network_bits" in row else row for row in rows
        ]
        keys.append("network_bpb")
    if any("network_saves_bits_per_byte" in row for row in rows):
        headers.append("network saves (bits/byte)")
        keys.append("network_saves_bits_per_byte")
    return Table(headers, [[row.get(k) for k in keys] for row in rows])


def _compression_reading(r: list[dict]) -> list[str]:
    res = r[0]
    rows = [row for row in res["rows"] if row.get("bits_per_byte") is not None]
    learned = [row for row in rows if row["name"].startswith("bitlens")]
    classical = [row for row in rows if not row["name"].startswith("bitlens")]
    lines = []
    if learned and classical:
        best_l = min(learned, key=lambda row: row["bits_per_byte"])
        best_c = min(classical, key=lambda row: row["bits_per_byte"])
        lines.append(
            f"On {fmt(res['input_bytes'])} bytes, {best_l['name']} codes at {fmt(best_l['bits_per_byte'])} "
            f"bits/byte, {_relative(best_l['bits_per_byte'], best_c['bits_per_byte'])} the best "
            f"classical compressor ({best_c['name']}, {fmt(best_c['bits_per_byte'])} bits/byte)."
        )
    for row in rows:
        saves = row.get("network_saves_bits_per_byte")
        if saves is not None:
            verb = "saves" if saves >= 0 else "costs"
            lines.append(
                f"Inside {row['name']} the network's input {verb} {fmt(abs(saves))} bits/byte against "
                "the same count models and mixer without it (measured in the same pass)."
            )
    failed = [row["name"] for row in res["rows"] if not row.get("roundtrip")]
    with_model = [row for row in rows if row.get("bits_per_byte_with_model") is not None]
    check = f"{len(res['rows']) - len(failed)} of {len(res['rows'])} rows decoded back to the input" + (
        f" (not: {', '.join(failed)})" if failed else ""
    )
    if with_model:
        m = with_model[0]
        check += (
            f"; counting the model's weights, {m['name']} costs "
            f"{fmt(m['bits_per_byte_with_model'])} bits/byte"
        )
    lines.append(check + ".")
    return lines


def _prequential_table(r: list[dict]) -> Table:
    res = r[0]
    n = res["bytes"]
    codes = [
        ("uniform code (8 bits/byte)", res["uniform_bits"]),
        ("prequential code", res["prequential_bits"]),
    ]
    if res.get("two_part_bits") is not None:
        code = res["weights_code"]
        codes += [
            ("two-part code: weights file + data", res["two_part_bits"]),
            ("  of which the weights file", code["weights_file_bits"]),
        ]
    codes += [(f"two-part code, flat {k} weights", v) for k, v in res["two_part_float_bits"].items()]
    codes += [
        ("data under the final model", res["final_model_bits"]),
        ("prequential − final model (coded bytes)", res["information_in_weights_bits"]),
    ]
    if res.get("information_in_weights_heldout_bits") is not None:
        codes.append(("prequential − n × final held-out rate", res["information_in_weights_heldout_bits"]))
    return Table(["code", "bits", "bits/byte"], [[name, bits, bits / n] for name, bits in codes])


def _prequential_reading(r: list[dict]) -> list[str]:
    res = r[0]
    n, preq = res["bytes"], res["prequential_bits"]
    first = f"Coding {fmt(n)} bytes while training on them (prequential) takes {fmt(preq / n)} bits/byte"
    if res.get("two_part_bits") is not None:
        first += (
            f"; sending the quantised weights as a file ({fmt(res['weights_file_bytes'])} bytes, "
            f"{fmt(res['weight_bits_per_parameter'])} bits/parameter, decoded and checked) and then "
            f"the data under them (two-part) takes {fmt(res['two_part_bits'] / n)} bits/byte, "
            f"{fmt(res['weights_code']['data_bits'] / n)} of them for the data"
        )
    lines = [first + "."]
    lines.append(
        f"Prequential minus final-model code length of the same bytes: "
        f"{fmt(res['information_in_weights_bits'])} bits ({fmt(res['information_in_weights_bits'] / n)} "
        "bits/byte), a difference of two code lengths that depends on how long the final model trained"
        + _by_training(res.get("by_final_training") or [])
        + _heldout(res.get("information_in_weights_heldout_bits"))
        + "."
    )
    return lines


def _heldout(bits: float | None) -> str:
    return (
        ""
        if bits is None
        else f"; with n × its held-out bits/byte in place of its own code length, {fmt(bits)} bits"
    )


def _by_training(runs: list[dict]) -> str:
    if len(runs) < 2:
        return ""
    parts = [f"{fmt(x['information_in_weights_bits'])} bits at {fmt(x['train_steps'])} steps" for x in runs]
    return " (" + ", ".join(parts) + ")"


# --- What does it keep? ----------------------------------------------------------------------


def _surprisal_table(r: list[dict]) -> Table:
    res = r[0]
    rows = [
        ["most surprising", p["start"], p["mean_surprisal_bits"], p["text"]] for p in res["most_surprising"]
    ]
    rows += [
        ["least surprising", p["start"], p["mean_surprisal_bits"], p["text"]] for p in res["least_surprising"]
    ]
    return Table(["passage", "start byte", "mean surprisal (bits/byte)", "text"], rows)


def _surprisal_reading(r: list[dict]) -> list[str]:
    res = r[0]

    def ci(key: str) -> str:
        lo_hi = res.get(key)
        return f" [{fmt(lo_hi[0])}, {fmt(lo_hi[1])}]" if lo_hi else ""

    gap = res.get("calibration_gap_ci95")
    if gap and gap[0] <= 0 <= gap[1]:
        verdict = "no miscalibration detected (the interval of their gap includes 0)."
    else:
        verdict = (
            "it is over-confident."
            if res["entropy_bits_per_byte"] < res["bits_per_byte"]
            else "it is under-confident."
        )
    blocks = f" (95 % intervals over {res['n_blocks']} blocks of the text)" if "n_blocks" in res else ""
    lines = [
        f"Over {fmt(res['bytes'])} held-out bytes the model pays {fmt(res['bits_per_byte'])}"
        f"{ci('bits_per_byte_ci95')} bits/byte and expects to pay {fmt(res['entropy_bits_per_byte'])}"
        f"{ci('entropy_bits_per_byte_ci95')} (its predictive entropy){blocks}: " + verdict,
    ]
    most, least = res["most_surprising"], res["least_surprising"]
    if most and least:
        lines.append(
            f"The most surprising passage costs {fmt(most[0]['mean_surprisal_bits'])} bits/byte, "
            f"the least surprising {fmt(least[0]['mean_surprisal_bits'])}."
        )
    return lines


def _dyn_iv(iv: dict | None) -> str:
    """An interval dict as "estimate [low, high]" (3 decimals), or "–" when undefined."""
    if iv is None:
        return "–"
    return f"{fmt(iv['estimate'])} [{fmt(iv['ci95'][0])}, {fmt(iv['ci95'][1])}]"


def _dynamics_table(r: list[dict]) -> Table:
    res = r[0]
    return Table(
        [
            "class (loss start→end)",
            "share of bytes [95% CI]",
            "Rho-1",
            "share of the gain",
            "share of the starting bits",
        ],
        [
            [
                k,
                _dyn_iv(c["proportion"]),
                res["rho1_proportions"].get(k),
                _dyn_iv(c["gain_share"]),
                _dyn_iv(c["start_bits_share"]),
            ]
            for k, c in res["classes"].items()
        ],
    )


def _dynamics_reading(r: list[dict]) -> list[str]:
    """Worded from the intervals: a ratio whose interval holds 1, a slope whose interval holds 1,
    or a movement inside the seed noise, is read as "no difference detected"."""
    res = r[0]
    cls = res["classes"]
    split = (
        f"Of {fmt(res['tokens'])} held-out bytes from {res['start']} to {res['end']} (threshold "
        f"{fmt(res['threshold_bits'])} bits), "
        + ", ".join(f"{100 * c['proportion']['estimate']:.0f}% are {k}" for k, c in cls.items())
        + " (Rho-1: "
        + ", ".join(f"{100 * v:.0f}% {k}" for k, v in res["rho1_proportions"].items())
        + f"; total variation distance {fmt(res['distance_to_rho1'])})"
    )
    null = res.get("noise_null")
    if null is not None:
        moved = sum(cls[k]["proportion"]["estimate"] for k in ("H->L", "L->H"))
        n_lo, n_hi = null["off_diagonal"]["ci95"]
        verdict = (
            "no movement beyond the seed noise is detected"
            if n_lo <= moved <= n_hi
            else "more than the seed noise"
            if moved > n_hi
            else "less than the seed noise"
        )
        split += (
            f". Between two seeds' final checkpoints {_dyn_iv(null['off_diagonal'])} of bytes change "
            f"class (H->L or L->H), against {fmt(moved)} from start to end: {verdict}."
        )
    else:
        split += "; no two-seed noise null was run, so movement is not compared with seed noise."
    above: list[str] = []
    level: list[str] = []
    below: list[str] = []
    for k, c in cls.items():
        ratio = c.get("gain_over_start_share")
        if ratio is not None:
            lo, hi = ratio["ci95"]
            (above if lo > 1 else below if hi < 1 else level).append(f"{k} ({_dyn_iv(ratio)})")
    parts = [
        f"{name}: {', '.join(items)}"
        for name, items in (("more", above), ("less", below), ("no difference detected", level))
        if items
    ]
    second = (
        "Gain share ÷ starting-bit share (1 = in proportion): "
        + ("; ".join(parts) or "undefined (no gain)")
        + "."
    )
    reg = res["regression"]
    if reg.get("slope") is not None:
        lo, hi = reg["slope"]["ci95"]
        shape = (
            "no difference from a uniform shift detected (the interval holds 1)"
            if lo <= 1 <= hi
            else "high-start bytes lose more bits than low-start ones"
            if hi < 1
            else "high-start bytes lose fewer bits than low-start ones"
        )
        null_reg = (null or {}).get("regression") or {}
        noise = (
            f" (between two seeds' final losses, where nothing was learned, the slope is "
            f"{_dyn_iv(null_reg['slope'])}: noise alone pulls a slope below 1)"
            if null_reg.get("slope")
            else ""
        )
        second += (
            f" End loss on start loss: slope {_dyn_iv(reg['slope'])}, r² {_dyn_iv(reg['r_squared'])}: "
            f"{shape}{noise}."
        )
    return [split, second]


def _capacity_table(r: list[dict]) -> Table:
    res = r[0]
    rows = [
        [
            p,
            f["slope_bits_per_parameter"],
            f"[{fmt(f['slope_ci95'][0])}, {fmt(f['slope_ci95'][1])}]",
            f["n_seeds"],
            f["anchor"],
            f["anchor_bits_per_parameter"],
        ]
        for p, f in res["precision"].items()
    ]
    headers = ["weights", "slope (bits/parameter)", "95% CI", "seeds", "anchor", "anchor (bits/parameter)"]
    return Table(headers, rows)


def _capacity_reading(r: list[dict]) -> list[str]:
    res = r[0]
    runs = res["runs"]
    lo, hi = res["slope_ci95"]
    params = [m["parameters"] for m in runs]
    short = [m for m in runs if not (m["saturated"] and m["plateau_reached"])]
    caveat = (
        f" All {len(runs)} runs saturated and reached a plateau."
        if not short
        else f" {len(short)} of {len(runs)} runs did not saturate or reach a plateau, so their "
        "capacities, and the slope, are lower bounds."
    )
    morris = res["anchors_bits_per_parameter"]["morris_2025"]
    prec = res["precision"]
    zero = " (its interval includes 0: no growth with size detected)" if lo <= 0 <= hi else ""
    return [
        f"Capacity grows by {fmt(res['slope_bits_per_parameter'])} bits per parameter (95% CI "
        f"[{fmt(lo)}, {fmt(hi)}], {res['n_seeds']} seeds){zero}, fitted over "
        f"{fmt(min(params))}–{fmt(max(params))} parameters; Morris et al. measured "
        f"{fmt(morris['fp32'])} (fp32) and {fmt(morris['bf16'])} (bf16) at saturation.{caveat}",
        "Re-measured after rounding the trained weights: "
        + ", ".join(
            f"{p} {fmt(f['slope_bits_per_parameter'])} [{fmt(f['slope_ci95'][0])}, {fmt(f['slope_ci95'][1])}]"
            for p, f in prec.items()
        )
        + " bits/parameter; Allen-Zhu & Li kept 2 after int8 and ≈0.7 after int4.",
    ]


# --- How does information flow through the layers? -------------------------------------------

_LENS_KEYS = ["layer", "logit_kl_bits", "tuned_kl_bits", "logit_ce_bits", "tuned_ce_bits", "entropy_bits"]


def _lens_table(r: list[dict]) -> Table:
    return Table(
        [
            "layer",
            "logit-lens KL (bits)",
            "tuned-lens KL (bits)",
            "logit-lens CE (bits)",
            "tuned-lens CE (bits)",
            "entropy (bits)",
        ],
        [[row.get(k) for k in _LENS_KEYS] for row in r[0]["layers"]],
    )


def _lens_reading(r: list[dict]) -> list[str]:
    layers = r[0]["layers"]
    first, last = layers[0], layers[-1]

    def ci(row: dict, key: str) -> str:
        lo_hi = row.get(key)
        return f" [{fmt(lo_hi[0])}, {fmt(lo_hi[1])}]" if lo_hi else ""

    blocks = r[0].get("n_blocks")
    where = f" (95 % intervals over {fmt(blocks)} blocks of held-out positions)" if blocks else ""
    return [
        f"At layer {first['layer']} the logit lens is {fmt(first['logit_kl_bits'])}"
        f"{ci(first, 'logit_kl_ci95')} bits (KL) from the final prediction and the tuned lens "
        f"{fmt(first['tuned_kl_bits'])}{ci(first, 'tuned_kl_ci95')} bits{where}.",
        f"Cross-entropy read off the residual stream falls from {fmt(first['logit_ce_bits'])}"
        f"{ci(first, 'logit_ce_ci95')} bits at layer {first['layer']} to {fmt(last['logit_ce_bits'])}"
        f"{ci(last, 'logit_ce_ci95')} bits at layer {last['layer']}.",
    ]


def _probes_table(r: list[dict]) -> Table:
    rows = []
    for prop in r[0]["properties"]:
        for row in prop["layers"]:
            low, high = row["selectivity_ci95"]
            rows.append(
                [
                    prop["property"],
                    row["layer"],
                    row["codelength_bits"],
                    row["control_codelength_bits"],
                    row["compression"],
                    row["selectivity_bits"],
                    f"[{fmt(low)}, {fmt(high)}]",
                ]
            )
    return Table(
        [
            "property",
            "layer",
            "online (bits)",
            "control task (bits)",
            "compression",
            "selectivity (bits)",
            f"95% interval ({r[0]['seeds']} seeds)",
        ],
        rows,
    )


def _probes_reading(r: list[dict]) -> list[str]:
    res = r[0]
    start, end = res["byte_range"]
    where = (
        "the validation split, held out from training"
        if res["heldout"] == "validation split"
        else "text assumed held out (an hf: model's training text is unknown)"
    )
    parts = []
    for prop in res["properties"]:
        best = max(prop["layers"], key=lambda row: row["selectivity_bits"])
        low, high = best["selectivity_ci95"]
        verdict = (
            "the interval includes 0: no effect beyond a lookup of the input type detected"
            if low <= 0 <= high
            else ("above" if low > 0 else "below") + " a lookup of the input type"
        )
        parts.append(
            f"{prop['property']} peaks at layer {best['layer']} with {fmt(best['selectivity_bits'])} bits "
            f"(95% interval {fmt(low)} to {fmt(high)}; {verdict})"
        )
    return [
        f"Selectivity = bits saved on the property minus bits saved on its control task (a random "
        f"label fixed per input type), over {res['seeds']} seeds, on bytes {start:,}–{end:,} ({where}).",
        "; ".join(parts) + ".",
    ]


# --- Does generated data distil or collapse? -------------------------------------------------


def _offspring_bpb(row: dict) -> str:
    """Held-out bits/byte with its interval over seeds when the JSON carries one."""
    ci = row.get("heldout_bits_per_byte_ci95")
    ci_text = f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""
    return f"{fmt(row['heldout_bits_per_byte'])}{ci_text}"


def _offspring_gain(g: dict | None) -> str:
    """A paired gain per byte as "estimate [low, high]"; "no effect detected" when the interval
    includes 0."""
    if g is None:
        return "–"
    if g.get("ci95") is None:
        return f"{fmt(g['estimate'])} (one seed: no interval, not a finding)"
    lo, hi = g["ci95"]
    verdict = " (no effect detected)" if lo <= 0.0 <= hi else ""
    return f"{_dyn_iv(g)}{verdict}"


def _offspring_table(r: list[dict]) -> Table:
    res = r[0]
    rows = [
        [
            s["name"],
            s.get("keep_ratio"),
            s.get("tokens"),
            s.get("flops"),
            _offspring_bpb(s),
            s.get("choice_bits"),
            _offspring_gain(s.get("gain_over_random_bits_per_byte")),
            _offspring_gain(s.get("gain_over_bigram_bits_per_byte")),
        ]
        for s in res["strategies"]
    ]
    rows += [
        [f"distil: {d['target']}", None, d["tokens"], None, _offspring_bpb(d), None, None, None]
        for d in res["distillation"]
    ]
    n = res["strategies"][0].get("n_seeds") if res["strategies"] else None
    seeds = f" ({n} seeds)" if n else ""
    return Table(
        [
            "selection / target",
            "keep ratio",
            "tokens",
            "FLOPs",
            f"held-out bits/byte [95% CI]{seeds}",
            "choice bits (upper bound)",
            "gain over random mask (bits/byte)",
            "gain over bigram scorer's mask (bits/byte)",
        ],
        rows,
    )


def _offspring_reading(r: list[dict]) -> list[str]:
    res = r[0]
    lines = []
    if res["strategies"]:
        best = min(res["strategies"], key=lambda s: s["heldout_bits_per_byte"])
        g = best.get("gain_over_random_bits_per_byte")
        n = best.get("n_seeds")
        over = (
            "it is the random baseline"
            if g is None
            else f"{_offspring_gain(g)} bits/byte better than a random mask"
            + (f" (Holm-adjusted p {fmt(g['p_holm'])})" if g.get("p_holm") is not None else "")
        )
        split = res.get("heldout_split")
        line = (
            f"The best selection, {best['name']}, gives an offspring at {_offspring_bpb(best)} "
            f"held-out bits/byte{f' over {n} seeds' if n else ''}"
            f"{f' on the {split} split' if split else ''}: {over}."
        )
        parent_rows = [s for s in res["strategies"] if s.get("gain_over_bigram_bits_per_byte")]
        if parent_rows:
            top = max(parent_rows, key=lambda s: s["gain_over_bigram_bits_per_byte"]["estimate"])
            tg = top["gain_over_bigram_bits_per_byte"]
            holm_p = f", Holm-adjusted p {fmt(tg['p_holm'])}" if tg.get("p_holm") is not None else ""
            line += (
                f" What the parent's choice adds over a bigram count scorer's mask: at best "
                f"{_offspring_gain(tg)} bits/byte ({top['name']}{holm_p}; "
                f"log2 C(n, k) = {fmt(top['choice_bits'])} bits bounds what a mask can carry)."
            )
        lines.append(line)
    if res["distillation"]:
        d = min(res["distillation"], key=lambda d: d["heldout_bits_per_byte"])
        lines.append(
            f"Distilling on {d['target']} targets is best: {_offspring_bpb(d)} "
            f"bits/byte, {fmt(d['kl_to_parent_bits'])} bits KL to the parent."
        )
    return lines


# --- Can the loop evolve? --------------------------------------------------------------------


def _genome(g: Any) -> str:
    if isinstance(g, dict):
        return ", ".join(f"{k}={v}" for k, v in g.items())
    return str(g)


def _evolution_table(r: list[dict]) -> Table:
    rows = [
        [g["generation"], g["best_fitness"], g["mean_fitness"], _genome(g["best_genome"])]
        for g in r[0]["generations"]
    ]
    return Table(["generation", "best fitness", "mean fitness", "best genome"], rows)


def _evolution_reading(r: list[dict]) -> list[str]:
    res = r[0]
    g = res["generations"]
    lines = []
    if g:
        lines.append(
            f"Best fitness went from {fmt(g[0]['best_fitness'])} in generation {g[0]['generation']} "
            f"to {fmt(g[-1]['best_fitness'])} in generation {g[-1]['generation']}."
        )
    if res["pareto"]:
        best = min(res["pareto"], key=lambda p: p["heldout_bits_per_byte"])
        lines.append(
            f"The Pareto front (held-out bits/byte vs FLOPs) holds {len(res['pareto'])} policies; "
            f"the best reaches {fmt(best['heldout_bits_per_byte'])} bits/byte at "
            f"{fmt(best['flops'])} FLOPs."
        )
    return lines


# --- Does it generalise? ---------------------------------------------------------------------


def _interval(ci: list[float], scale: float = 1.0) -> str:
    return f"[{fmt(ci[0] / scale)}, {fmt(ci[1] / scale)}]"


def _generalisation_table(r: list[dict]) -> Table:
    return Table(
        [
            "training windows n",
            "gap (bits/byte)",
            "gap ci95",
            "bound (bits/byte)",
            "CMI (bits/pair)",
            "CMI ci95",
            "null floor (bits/pair)",
            "p vs null",
            "CMI reads",
            "compression bound (bits/byte)",
        ],
        [
            [
                p["n"],
                p["gap_bits_per_byte"],
                _interval(p["gap_ci95"]) if p["n_supersamples"] > 1 else None,
                p["bound_bits_per_byte"],
                p["cmi_bits_per_window"],
                _interval(p["cmi_ci95"], p["n"]) if p["n_supersamples"] > 1 else None,
                p["cmi_floor_bits_per_window"],
                p["cmi_null_p_value"],
                p["cmi_status"],
                p.get("compression_bound_bits_per_byte"),
            ]
            for p in r[0]["points"]
        ],
    )


def _ns(pts: list[dict]) -> str:
    names = [fmt(p["n"]) for p in pts]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _generalisation_reading(r: list[dict]) -> list[str]:
    """Line 1: where the CMI estimate is informative, and where it sits at its floor or 1 bit.
    Line 2: bound against gap, read as a finding only at the informative sizes."""
    pts = sorted(r[0]["points"], key=lambda p: p["n"])
    good = [p for p in pts if p["informative"]]
    ceiling = [p for p in pts if p["cmi_status"] == "ceiling"]
    floor = [p for p in pts if p["cmi_status"] == "floor"]
    where = f"at n = {_ns(good)}" if good else f"at none of the {len(pts)} training-set sizes"
    stuck = []
    if ceiling:
        stuck.append(f"at n = {_ns(ceiling)} it sits at 1 bit per pair (the masks are fully readable)")
    if floor:
        ps = ", ".join(fmt(p["cmi_null_p_value"]) for p in floor)
        stuck.append(
            f"at n = {_ns(floor)} it sits at its permutation floor (p = {ps}: bias, not information)"
        )
    first = f"The CMI estimate is informative (above its permutation floor, below 1 bit per pair) {where}" + (
        f'; {" and ".join(stuck)}, so there "bound ≥ gap" holds by construction and is no finding.'
        if stuck
        else "."
    )
    cap = pts[0]["loss_cap_bits"]
    vacuous = [p for p in pts if p["vacuous"]]
    tail = (
        f" With the loss capped at {fmt(cap)} bits/byte the bound is vacuous (at or above the cap) "
        f"at n = {_ns(vacuous)}."
        if vacuous
        else f" The bound stays below the loss cap of {fmt(cap)} bits/byte at every size."
    )
    if good:
        held = sum(p["gap_bits_per_byte"] <= p["bound_bits_per_byte"] for p in good)
        p = good[-1]
        one = p["n_supersamples"] == 1

        def ci(key: str, scale: float = 1.0) -> str:
            return "" if one else " " + _interval(p[key], scale)

        no_gap = "" if one or not p["gap_ci95"][0] <= 0 <= p["gap_ci95"][1] else " (no gap detected)"
        runs = (
            f"{p['n_masks']} masks on 1 supersample, so no intervals"
            if one
            else f"{p['n_supersamples']} supersamples × {p['n_masks']} masks"
        )
        gap = p["gap_bits_per_byte"]
        times = p["bound_bits_per_byte"] / gap if gap > 0 else 0.0
        ratio = f", {times:.{1 if times < 10 else 0}f}× the gap" if gap > 0 and not no_gap else ""
        second = (
            f"Where it is informative the bound covers the measured gap at {held} of {len(good)} sizes: "
            f"at n = {fmt(p['n'])} training windows the gap is {fmt(gap)}"
            f"{ci('gap_ci95')} bits/byte{no_gap} and the bound {fmt(p['bound_bits_per_byte'])}"
            f"{ci('bound_ci95')} bits/byte{ratio} ({fmt(p['cmi_bits_per_window'])}{ci('cmi_ci95', p['n'])} "
            f"bits of CMI per pair; {runs})."
        )
    else:
        second = "No training-set size gives a finding about the bound."
    return [first, " ".join([second + tail, *_compression_bound_reading(pts)])]


def _compression_bound_reading(pts: list[dict]) -> list[str]:
    """The Occam bound from a weights file: vacuous or not, at which n, and from how large a file."""
    known = [p for p in pts if p.get("compression_bound_bits_per_byte") is not None]
    if not known:
        return []
    useful = [p for p in known if not p["compression_bound_vacuous"]]
    best = min(known, key=lambda p: p["compression_bound_bits_per_byte"])
    verdict = (
        f"it says something (below 8 bits/byte) at n = {_ns(useful)}"
        if useful
        else "it is vacuous (at or above 8 bits/byte, the cost of coding bytes uniformly) at every size"
    )
    kib = best["compression_bound_weights_bits"] / 8192
    return [
        "The compression (Occam) bound from a real weights file is "
        f"{fmt(best['compression_bound_bits_per_byte'])} bits/byte at best (n = {fmt(best['n'])}, a "
        f"{fmt(kib)} KiB file at {best['compression_bound_precision_bits']} bits per weight): {verdict}."
    ]


def _section(
    key: str,
    title: str,
    table: Callable,
    reading: Callable,
    plots: tuple[PlotFn, ...],
    steps: tuple[str, ...] | None = None,
) -> Section:
    return Section(key, title, steps or (key,), table, reading, plots)


# The report's questions, in order, each with its sections.
QUESTIONS: list[tuple[str, list[Section]]] = [
    (
        "Is the model a compressed encoding of its data?",
        [
            _section("train", "the default model", _train_table, _train_reading, (plot_training,)),
            _section(
                "compression",
                "compression against classical compressors",
                _compression_table,
                _compression_reading,
                (plot_compression,),
            ),
            _section(
                "prequential",
                "prequential code vs two-part code",
                _prequential_table,
                _prequential_reading,
                (plot_prequential,),
            ),
        ],
    ),
    (
        "What does it keep?",
        [
            _section(
                "surprisal", "surprisal and entropy", _surprisal_table, _surprisal_reading, (plot_surprisal,)
            ),
            _section(
                "dynamics", "token-class dynamics", _dynamics_table, _dynamics_reading, (plot_dynamics,)
            ),
            _section(
                "capacity",
                "capacity in bits per parameter",
                _capacity_table,
                _capacity_reading,
                (plot_capacity,),
            ),
        ],
    ),
    (
        "How does information flow through the layers?",
        [
            _section("lens", "logit lens and tuned lens", _lens_table, _lens_reading, (plot_lens,)),
            _section("probes", "MDL probes per layer", _probes_table, _probes_reading, (plot_probes,)),
        ],
    ),
    (
        "Does generated data distil or collapse?",
        [
            _section(
                "offspring",
                "offspring selection and distillation",
                _offspring_table,
                _offspring_reading,
                (plot_strategies,),
            ),
            _section(
                "distillation",
                "distillation as a 2×2, and born-again offspring",
                distillation_table,
                distillation_reading,
                (plot_distillation,),
                steps=("distillation", "born_again"),
            ),
            _section(
                "collapse",
                "model collapse over generations: three arms over seeds",
                collapse_table,
                collapse_reading,
                (plot_collapse_arms,),
            ),
        ],
    ),
    (
        "Can the loop evolve?",
        [
            _section(
                "evolution",
                "evolution of curation policies",
                _evolution_table,
                _evolution_reading,
                (plot_fitness, plot_pareto),
            ),
        ],
    ),
    (
        "Does it generalise?",
        [
            _section(
                "generalisation",
                "generalisation gap and its bound",
                _generalisation_table,
                _generalisation_reading,
                (plot_generalisation,),
            ),
        ],
    ),
]
