"""The report page: built from contract-shaped JSON alone, escaped, self-contained, clean in Chromium."""

from __future__ import annotations

import ast
import base64
import json
import re
from html import unescape
from pathlib import Path

import pytest
import tests.chromium as chromium
from tests.chromium import open_page

from bitlens.cli import main
from bitlens.demo.manifest import ENTRY_POINTS, STEP_NAMES
from bitlens.errors import BitlensError
from bitlens.measures.lens import plot_lens
from bitlens.report import build_report, render_report
from bitlens.report.sections import fmt

HOSTILE = '<script>alert("x")</script> & \x01 "quoted"'


def _capacity_contract() -> dict:
    """Two sizes × two seeds; capacities on the line 2.5·params − 1000, seed 1 a little above."""
    runs = []
    for seed in (0, 1):
        for n_layer, n_embd, params in ((1, 16, 10_000), (2, 32, 40_000)):
            cap = 2.5 * params - 1000 + 500 * seed * (params // 10_000)
            runs.append(
                {
                    "n_layer": n_layer,
                    "n_embd": n_embd,
                    "seed": seed,
                    "parameters": params,
                    "memorised_bits": cap,
                    "saturated": True,
                    "plateau_reached": seed == 0,
                    "points": [
                        {"data_bits": 0.5 * cap, "memorised_bits": 0.5 * cap},
                        {"data_bits": 2.0 * cap, "memorised_bits": cap},
                    ],
                }
            )

    def fit(slope: float, lo: float, hi: float, anchor: str, value: float) -> dict:
        return {
            "slope_bits_per_parameter": slope,
            "slope_ci95": [lo, hi],
            "n_seeds": 2,
            "anchor": anchor,
            "anchor_bits_per_parameter": value,
        }

    precision = {
        "fp32": fit(2.55, 2.5, 2.6, "morris_2025/fp32", 3.83),
        "bf16": fit(2.55, 2.5, 2.6, "morris_2025/bf16", 3.51),
        "int8": fit(2.5, 2.45, 2.55, "allen_zhu_li_2024/int8", 2.0),
        "int4": fit(1.25, 1.0, 1.5, "allen_zhu_li_2024/int4", 0.7),
    }
    return {
        **{k: precision["fp32"][k] for k in ("slope_bits_per_parameter", "slope_ci95", "n_seeds")},
        "intercept_bits_by_seed": [-1000.0, -1000.0],
        "precision": precision,
        "runs": runs,
        "anchors_bits_per_parameter": {
            "morris_2025": {"overall": 3.6, "fp32": 3.83, "bf16": 3.51},
            "allen_zhu_li_2024": {"1000_exposures": 2.0, "100_exposures": 1.0, "int8": 2.0, "int4": 0.7},
        },
    }


def _iv(estimate: float, low: float, high: float) -> dict:
    return {"estimate": estimate, "ci95": [low, high], "n_seeds": 1, "n_blocks": 64}


def contract_results() -> dict[str, dict]:
    """One result per step, with the keys its section and its plot functions read, numbers chosen
    by hand."""
    layers = [
        {
            "layer": i,
            "logit_kl_bits": 3.0 - i,
            "tuned_kl_bits": 1.5 - 0.5 * i,
            "logit_ce_bits": 6.0 - i,
            "tuned_ce_bits": 5.0 - i,
            "entropy_bits": 4.0 - 0.5 * i,
        }
        for i in range(3)
    ]

    def change(estimate: float, half: float, reading: str) -> dict:
        return {
            "estimate": estimate,
            "ci95": [estimate - half, estimate + half],
            "n_seeds": 2,
            "reading": reading,
        }

    def arm(mode: str, bpb: float, rise: dict) -> dict:
        return {
            "mode": mode,
            "top_p": 1.0,
            "seeds": [0, 1],
            "real_tail_mass": 0.04,
            "real_rare_byte_mass": 0.02,
            "generations": [
                {
                    "generation": g,
                    "heldout_bits_per_byte": bpb + 0.1 * g,
                    "heldout_bits_per_byte_ci95": [bpb + 0.1 * g - 0.05, bpb + 0.1 * g + 0.05],
                    "sample_entropy_bits": 2.0 - 0.1 * g,
                    "tail_mass": 0.05 / (g + 1),
                    "rare_byte_mass": 0.02 / (g + 1),
                    "n_seeds": 2,
                }
                for g in range(3)
            ],
            "change": {
                "heldout_bits_per_byte": rise,
                "rare_byte_mass": change(-0.013, 0.02, "no change detected"),
            },
        }

    def paired(estimate: float, half: float, p: float, reading: str) -> dict:
        ci = [estimate - half, estimate + half]
        return {"estimate": estimate, "ci95": ci, "n_seeds": 2, "p_value": p, "p_holm": p, "reading": reading}

    def cell(labels: str, inputs: str, bpb: float) -> dict:
        ci = [bpb - 0.1, bpb + 0.1]
        return {
            "labels": labels,
            "inputs": inputs,
            "heldout_bits_per_byte": bpb,
            "heldout_bits_per_byte_ci95": ci,
            "n_seeds": 2,
        }

    def born(g: int, bpb: float, improvement: dict) -> dict:
        ci = [bpb - 0.1, bpb + 0.1]
        return {
            "generation": g,
            "heldout_bits_per_byte": bpb,
            "heldout_bits_per_byte_ci95": ci,
            "n_seeds": 2,
            "improvement_vs_parent_bits_per_byte": improvement,
        }

    return {
        "train": {
            "run_dir": "model",
            "preset": "tiny",
            "params": 222336,
            "steps": 200,
            "tokens": 819200,
            "flops": 1.37e12,
            "seconds": 12.5,
            "tokens_per_second": 65536.0,
            "val_bits_per_byte": 2.5,
            "val_bytes": 111539,
            "curve": [
                {"step": 50, "tokens": 204800, "train_bits_per_byte": 4.0, "val_bits_per_byte": 3.9},
                {"step": 200, "tokens": 819200, "train_bits_per_byte": 2.6, "val_bits_per_byte": 2.5},
            ],
        },
        "compression": {
            "input_bytes": 8000,
            "rows": [
                {
                    "name": "gzip -9",
                    "bits_per_byte": 3.2,
                    "output_bytes": 3200,
                    "compress_seconds": 0.01,
                    "decompress_seconds": 0.01,
                    "roundtrip": True,
                },
                {
                    "name": "xz -9e",
                    "bits_per_byte": 2.5,
                    "output_bytes": 2500,
                    "compress_seconds": 0.02,
                    "decompress_seconds": 0.01,
                    "roundtrip": True,
                },
                {
                    "name": "bitlens offline",
                    "bits_per_byte": 2.0,
                    "output_bytes": 2000,
                    "compress_seconds": 3.0,
                    "decompress_seconds": 3.1,
                    "roundtrip": True,
                    "bits_per_byte_with_model": 11.0,
                },
            ],
        },
        "surprisal": {
            "bits_per_byte": 2.5,
            "entropy_bits_per_byte": 2.25,
            "bytes": 111539,
            "most_surprising": [{"text": HOSTILE, "start": 42, "mean_surprisal_bits": 7.5}],
            "least_surprising": [{"text": "the king\n", "start": 7, "mean_surprisal_bits": 0.25}],
            "histogram": {
                "edges_bits": [0.0, 2.0, 4.0, 6.0, 8.0],
                "surprisal_counts": [50, 30, 15, 5],
                "entropy_counts": [40, 45, 10, 5],
            },
            "profile": {"surprisal_bits": [2.75, 2.25, 2.5], "entropy_bits": [2.5, 2.0, 2.25]},
        },
        "prequential": {
            "uniform_bits": 80000.0,
            "prequential_bits": 30000.0,
            "two_part_bits": 400_000.0,
            "weights_file_bytes": 47_500,
            "weight_bits_per_parameter": 1.9,
            "weights_code": {"weights_file_bits": 380_000.0, "data_bits": 20_000.0},
            "two_part_float_bits": {"fp32": 7_000_000.0, "fp16": 3_500_000.0},
            "final_model_bits": 20000.0,
            "information_in_weights_bits": 10000.0,
            "information_in_weights_heldout_bits": 5000.0,
            "by_final_training": [
                {
                    "multiple": 1.0,
                    "train_steps": 100,
                    "information_in_weights_bits": 10000.0,
                    "information_in_weights_heldout_bits": 5000.0,
                },
                {
                    "multiple": 2.0,
                    "train_steps": 200,
                    "information_in_weights_bits": 12000.0,
                    "information_in_weights_heldout_bits": 5500.0,
                },
            ],
            "bytes": 10000,
            "bits_per_byte": {
                "uniform_bits": 8.0,
                "prequential_bits": 3.0,
                "final_model_bits": 2.0,
                "two_part_bits": 40.0,
                "two_part_float_bits": {"fp32": 700.0, "fp16": 350.0},
            },
            "blocks": [
                {"start": 0, "end": 1000, "bits_per_byte": 6.0},
                {"start": 1000, "end": 10000, "bits_per_byte": 2.75},
            ],
        },
        "dynamics": {
            "source": "trained",
            "start": "step 10",
            "end": "step 100",
            "classes": {
                "L->L": {
                    "proportion": _iv(0.5, 0.45, 0.55),
                    "gain_share": _iv(0.1, 0.05, 0.15),
                    "start_bits_share": _iv(0.2, 0.18, 0.22),
                    "gain_over_start_share": _iv(0.5, 0.25, 0.75),
                },
                "H->L": {
                    "proportion": _iv(0.25, 0.2, 0.3),
                    "gain_share": _iv(0.9, 0.85, 0.95),
                    "start_bits_share": _iv(0.4, 0.35, 0.45),
                    "gain_over_start_share": _iv(2.25, 1.8, 2.7),
                },
                "L->H": {
                    "proportion": _iv(0.15, 0.1, 0.2),
                    "gain_share": _iv(-0.05, -0.09, -0.01),
                    "start_bits_share": _iv(0.1, 0.08, 0.12),
                    "gain_over_start_share": _iv(-0.5, -0.9, -0.1),
                },
                "H->H": {
                    "proportion": _iv(0.1, 0.05, 0.15),
                    "gain_share": _iv(0.05, 0.0, 0.1),
                    "start_bits_share": _iv(0.3, 0.25, 0.35),
                    "gain_over_start_share": _iv(0.17, 0.0, 1.2),
                },
            },
            "rho1_proportions": {"L->L": 0.51, "H->L": 0.26, "L->H": 0.12, "H->H": 0.11},
            "distance_to_rho1": 0.03,
            "tokens": 4000,
            "threshold_bits": 2.0,
            "regression": {
                "slope": _iv(0.6, 0.55, 0.65),
                "intercept": _iv(0.2, 0.1, 0.3),
                "r_squared": _iv(0.5, 0.45, 0.55),
            },
            "noise_null": {
                "classes": {k: _iv(0.25, 0.2, 0.3) for k in ("L->L", "H->L", "L->H", "H->H")},
                "off_diagonal": _iv(0.1, 0.08, 0.12),
                "regression": {"slope": _iv(0.8, 0.7, 0.9)},
            },
            "threshold_sweep": [
                {"threshold_bits": t, "proportions": {"L->L": p, "H->L": 0.2, "L->H": 0.1, "H->H": 0.7 - p}}
                for t, p in ((1.0, 0.2), (2.0, 0.5), (3.0, 0.6))
            ],
            "checkpoints": [
                {"label": "step 10", "step": 10, "bits_per_byte": 4.0, "ci95": [3.9, 4.1]},
                {"label": "step 100", "step": 100, "bits_per_byte": 3.0, "ci95": [2.9, 3.1]},
            ],
        },
        "capacity": _capacity_contract(),
        "lens": {"layers": layers},
        "probes": {
            "seeds": 3,
            "heldout": "validation split",
            "byte_range": [9000, 10000],
            "properties": [
                {
                    "property": "is_vowel",
                    "layers": [
                        {
                            "layer": 0,
                            "codelength_bits": 500.0,
                            "control_codelength_bits": 520.0,
                            "control_compression": 1.2,
                            "compression": 2.0,
                            "selectivity_bits": 20.0,
                            "selectivity_ci95": [-5.0, 40.0],
                            "n_seeds": 3,
                        },
                        {
                            "layer": 1,
                            "codelength_bits": 250.0,
                            "control_codelength_bits": 600.0,
                            "control_compression": 1.2,
                            "compression": 4.0,
                            "selectivity_bits": 350.0,
                            "selectivity_ci95": [300.0, 400.0],
                            "n_seeds": 3,
                        },
                    ],
                },
                {
                    "property": "prev",
                    "layers": [
                        {
                            "layer": 0,
                            "codelength_bits": 900.0,
                            "control_codelength_bits": 600.0,
                            "control_compression": 1.2,
                            "compression": 1.1,
                            "selectivity_bits": -300.0,
                            "selectivity_ci95": [-350.0, -250.0],
                            "n_seeds": 3,
                        },
                        {
                            "layer": 1,
                            "codelength_bits": 700.0,
                            "control_codelength_bits": 690.0,
                            "control_compression": 1.2,
                            "compression": 1.4,
                            "selectivity_bits": -10.0,
                            "selectivity_ci95": [-30.0, 15.0],
                            "n_seeds": 3,
                        },
                    ],
                },
            ],
        },
        "offspring": {
            "strategies": [
                {
                    "name": "random",
                    "keep_ratio": 0.3,
                    "tokens": 1000,
                    "flops": 1e9,
                    "heldout_bits_per_byte": 3.0,
                    "heldout_bits_per_byte_ci95": [2.9, 3.1],
                    "n_seeds": 3,
                    "fitness": -3.0,
                    "choice_bits": 800.0,
                    "gain_over_random_bits_per_byte": None,
                    "gain_over_bigram_bits_per_byte": None,
                },
                {
                    "name": "static-excess",
                    "keep_ratio": 0.3,
                    "tokens": 1000,
                    "flops": 1e9,
                    "heldout_bits_per_byte": 2.75,
                    "heldout_bits_per_byte_ci95": [2.7, 2.8],
                    "n_seeds": 3,
                    "fitness": -2.75,
                    "choice_bits": 800.0,
                    "gain_over_random_bits_per_byte": {
                        "estimate": 0.25,
                        "ci95": [0.2, 0.3],
                        "n_seeds": 3,
                        "p_value": 0.01,
                        "p_holm": 0.02,
                    },
                    "gain_over_bigram_bits_per_byte": {
                        "estimate": 0.05,
                        "ci95": [-0.1, 0.2],
                        "n_seeds": 3,
                        "p_value": 0.4,
                        "p_holm": 0.4,
                    },
                },
            ],
            "distillation": [
                {
                    "target": "hard",
                    "tokens": 1000,
                    "heldout_bits_per_byte": 2.9,
                    "kl_to_parent_bits": 0.5,
                    "kl_drop_bits_per_byte": 2.0,
                },
                {
                    "target": "soft",
                    "tokens": 1000,
                    "heldout_bits_per_byte": 2.7,
                    "kl_to_parent_bits": 0.25,
                    "kl_drop_bits_per_byte": 4.0,
                },
            ],
        },
        "distillation": {
            "cells": [
                cell("hard", "real", 3.0),
                cell("soft", "real", 2.8),
                cell("hard", "synthetic", 3.4),
                cell("soft", "synthetic", 3.1),
            ],
            "effects": [
                {
                    **paired(-0.25, 0.1, 0.01, "soft labels lower bits/byte"),
                    "effect": "labels",
                    "definition": "soft − hard",
                },
                {
                    **paired(0.35, 0.5, 0.3, "no effect detected"),
                    "effect": "inputs",
                    "definition": "synthetic − real",
                },
                {
                    **paired(-0.1, 0.3, 0.6, "no effect detected"),
                    "effect": "interaction",
                    "definition": "gap difference",
                },
            ],
            "seeds": [0, 1],
            "budget_tokens": 32768,
        },
        "born_again": {
            "parent_bits_per_byte": 3.0,
            "budget_ratio": 1.0,
            "seeds": [0, 1],
            "generations": [born(1, 2.9, paired(0.1, 0.05, 0.04, "the offspring beats its parent"))],
            "hard_control": {
                "heldout_bits_per_byte": 3.05,
                "heldout_bits_per_byte_ci95": [3.0, 3.1],
                "n_seeds": 2,
            },
        },
        "collapse": {
            "generations": 2,
            "seeds": [0, 1],
            "arms": [
                arm("replace", 2.5, change(0.2, 0.1, "rises")),
                arm("accumulate", 2.4, change(0.02, 0.05, "no change detected")),
            ],
        },
        "evolution": {
            "generations": [
                {
                    "generation": 0,
                    "best_fitness": -3.0,
                    "mean_fitness": -3.5,
                    "best_genome": {"score": "random"},
                },
                {
                    "generation": 1,
                    "best_fitness": -2.5,
                    "mean_fitness": -3.0,
                    "best_genome": {"score": "static-excess"},
                },
            ],
            "pareto": [
                {"heldout_bits_per_byte": 2.5, "flops": 2e9, "genome": {"score": "static-excess"}},
                {"heldout_bits_per_byte": 2.75, "flops": 1e9, "genome": {"score": "random"}},
            ],
        },
        "generalisation": {
            "points": [
                gen_point(75, 3.0, 14.5, 1.0, 0.02, 0.001, "ceiling"),
                gen_point(1000, 0.5, 0.75, 0.3, 0.02, 0.001, "informative"),
                gen_point(4000, 0.25, 0.2, 0.021, 0.02, 0.4, "floor"),
            ]
        },
    }


def gen_point(n, gap, bound, per_pair, floor, p, status) -> dict:
    """One generalisation point as `measure generalisation` writes it (3 supersamples × 32 masks)."""
    return {
        "n": n,
        "gap_bits_per_byte": gap,
        "gap_ci95": [gap - 0.1, gap + 0.1],
        "bound_bits_per_byte": bound,
        "bound_ci95": [bound - 0.05, bound + 0.05],
        "cmi_bits": per_pair * n,
        "cmi_ci95": [(per_pair - 0.01) * n, min(per_pair + 0.01, 1.0) * n],
        "cmi_bits_per_window": per_pair,
        "cmi_null_floor_bits": floor * n,
        "cmi_floor_bits_per_window": floor,
        "cmi_null_p_value": p,
        "cmi_status": status,
        "informative": status == "informative",
        "vacuous": bound >= 12.322,
        "loss_cap_bits": 12.322,
        "n_masks": 32,
        "n_supersamples": 3,
        "n_seeds": 3,
        "compression_bound_bits_per_byte": 20.0 + 1000.0 / n,
        "compression_bound_weights_bits": 8192.0 * 60,
        "compression_bound_precision_bits": 2,
        "compression_bound_vacuous": True,
    }


def demo_manifest(quick: bool, seed: int, steps: dict[str, dict] | None = None) -> dict:
    """A `demo.json` as the demo writes it; `steps` maps a step to {status, error}."""
    return {
        "quick": quick,
        "seed": seed,
        "corpus": "tinyshakespeare",
        "corpus_bytes": 1115394,
        "steps": {
            name: {"seconds": 1.5, "entry_point": ENTRY_POINTS[name], "error": None, **record}
            for name, record in (steps or {}).items()
        },
    }


def write_results(folder: Path, results: dict[str, dict], manifest: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        (folder / f"{name}.json").write_text(json.dumps(result))
    if manifest is not None:
        (folder / "demo.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def full_page(tmp_path_factory) -> tuple[Path, str]:
    folder = write_results(
        tmp_path_factory.mktemp("report") / "demo", contract_results(), demo_manifest(True, 3)
    )
    path = build_report(folder)
    return path, path.read_text()


def _text(html: str) -> str:
    """The page's visible text: tags stripped, entities decoded."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_every_section_reads_the_numbers_from_json(full_page):
    _, html = full_page
    text = _text(html)
    assert "Not run yet" not in html and "Not in this report yet" not in html
    assert "does not follow the contract" not in html
    # Readings computed from the hand-picked numbers.
    assert (
        "bitlens offline codes at 2.000 bits/byte, 20% fewer bits than the best classical compressor "
        "(xz -9e, 2.500 bits/byte)" in text
    )
    assert (
        "3 of 3 rows decoded back to the input; counting the model's weights, bitlens offline costs "
        "11.000 bits/byte" in text
    )
    assert "takes 3.000 bits/byte" in text
    assert (
        "as a file (47,500 bytes, 1.900 bits/parameter, decoded and checked) and then the data under "
        "them (two-part) takes 40.000 bits/byte, 2.000 of them for the data" in text
    )
    assert "code length of the same bytes: 10,000 bits (1.000 bits/byte)" in text
    assert "(10,000 bits at 100 steps, 12,000 bits at 200 steps); with n × its held-out" in text
    assert "in place of its own code length, 5,000 bits." in text
    # information in the weights is a difference of two code lengths, never called a bound
    start = text.index("Prequential code vs two-part code")  # the section heading
    prequential = text[start : text.index("Reproduce:", start)]
    assert "upper bound" not in prequential and "absorbed" not in text
    assert "3.20× fewer bits than the 8 bits/byte" in text  # 8 / 2.5
    assert "from 3.900 at step 50 to 2.500 at the end" in text
    assert "it is over-confident" in text  # entropy 2.25 < 2.5 bits/byte
    assert (
        "Capacity grows by 2.550 bits per parameter (95% CI [2.500, 2.600], 2 seeds), fitted over "
        "10,000–40,000 parameters; Morris et al. measured 3.830 (fp32) and 3.510 (bf16)" in text
    )
    assert "2 of 4 runs did not saturate or reach a plateau" in text
    assert "int4 1.250 [1.000, 1.500] bits/parameter; Allen-Zhu & Li kept 2 after int8" in text
    assert "over 3 seeds, on bytes 9,000–10,000 (the validation split, held out from training)" in text
    assert (
        "is_vowel peaks at layer 1 with 350.000 bits (95% interval 300.000 to 400.000; above a lookup" in text
    )
    assert (
        "prev peaks at layer 1 with -10.000 bits (95% interval -30.000 to 15.000; the interval includes 0: "
        "no effect beyond a lookup of the input type detected)" in text
    )
    assert "<th>95% interval (3 seeds)</th>" in html
    assert "50% are L->L, 25% are H->L, 15% are L->H, 10% are H->H (Rho-1: 51% L->L, 26% H->L" in text
    assert "(1 = in proportion): more: H->L (2.250 [1.800, 2.700]); less: L->L" in text
    assert "no difference detected: H->H (0.170 [0.000, 1.200])" in text
    assert "slope 0.600 [0.550, 0.650], r² 0.500 [0.450, 0.550]: high-start bytes lose more bits" in text
    assert "where nothing was learned, the slope is 0.800 [0.700, 0.900]" in text
    assert "change class (H->L or L->H), against 0.400 from start to end: more than the seed noise" in text
    assert '<h3 id="probes">MDL probes per layer</h3>' in html
    assert (
        "The best selection, static-excess, gives an offspring at 2.750 [2.700, 2.800] held-out "
        "bits/byte over 3 seeds: 0.250 [0.200, 0.300] bits/byte better than a random mask "
        "(Holm-adjusted p 0.020)" in text
    )
    assert (
        "adds over a bigram count scorer's mask: at best 0.050 [-0.100, 0.200] (no effect detected) "
        "bits/byte (static-excess, Holm-adjusted p 0.400; log2 C(n, k) = 800.000 bits bounds what "
        "a mask can carry)" in text
    )
    assert "Distilling on soft targets is best: 2.700" in text
    assert (
        "Change in held-out bits/byte from generation 0 to 2: replace (top-p 1.000) 0.200 [0.100, 0.300] "
        "bits/byte (2 seeds), rises; accumulate (top-p 1.000) 0.020 [-0.030, 0.070] bits/byte (2 seeds), "
        "no change detected." in text
    )
    assert (
        "rare-byte mass: replace (top-p 1.000) -0.013 [-0.033, 0.007] (2 seeds), no change detected" in text
    )
    assert (
        "labels (soft − hard): -0.250 [-0.350, -0.150] bits/byte (2 seeds), soft labels lower bits/byte; "
        "inputs (synthetic − real): 0.350 [-0.150, 0.850] bits/byte (2 seeds), no effect detected" in text
    )
    assert (
        "improve on the parent (3.000 bits/byte) by: generation 1 0.100 [0.050, 0.150] bits/byte (2 seeds) "
        "(the offspring beats its parent)." in text
    )
    assert "Best fitness went from -3.000 in generation 0 to -2.500 in generation 1" in text
    assert "holds 2 policies; the best reaches 2.500 bits/byte at 2e+09 FLOPs" in text
    assert (
        "The CMI estimate is informative (above its permutation floor, below 1 bit per pair) at n = 1,000; "
        "at n = 75 it sits at 1 bit per pair (the masks are fully readable) and at n = 4,000 it sits at its "
        'permutation floor (p = 0.400: bias, not information), so there "bound ≥ gap" holds by construction'
        in text
    )
    assert (
        "Where it is informative the bound covers the measured gap at 1 of 1 sizes: at n = 1,000 training "
        "windows the gap is 0.500 [0.400, 0.600] bits/byte and the bound 0.750 [0.700, 0.800] bits/byte, "
        "1.5× the gap (0.300 [0.290, 0.310] bits of CMI per pair; 3 supersamples × 32 masks)" in text
    )
    assert (
        "With the loss capped at 12.322 bits/byte the bound is vacuous (at or above the cap) at n = 75"
        in text
    )
    assert "<th>CMI reads</th>" in html and "<td>ceiling</td>" in html
    assert (  # 20 + 1000/n is smallest at n = 4,000; a 60 KiB file at 2 bits per weight
        "The compression (Occam) bound from a real weights file is 20.250 bits/byte at best (n = 4,000, a "
        "60.000 KiB file at 2 bits per weight): it is vacuous (at or above 8 bits/byte" in text
    )
    assert "<th>training windows n</th>" in html
    assert "at most" not in text and "bytes the gap" not in text and "training bytes n" not in text
    # One figure per section, two for evolution; all inline SVG.
    figures = re.findall(r'<img class="figure" alt="[^"]*" src="data:image/svg\+xml;base64,', html)
    assert len(figures) == 14
    assert "quick demo, seed 3" in text and "--quick --seed 3 --redo compression" in html


def test_page_is_self_contained_and_escapes_corpus_text(full_page):
    _, html = full_page
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; \\x01 &quot;quoted&quot;" in html
    assert "\x01" not in html


def test_failed_absent_and_malformed_steps_are_named(tmp_path):
    results = contract_results()
    results["lens"] = {"layers": [{"layer": 0}]}  # lacks the contract's per-layer keys
    del results["surprisal"]["histogram"]  # its figure cannot be drawn
    del results["capacity"], results["born_again"]
    manifest = demo_manifest(False, 0, {"probes": {"status": "failed", "error": "RuntimeError: <boom>"}})
    html = render_report(write_results(tmp_path / "d", results, manifest))
    assert "failed: RuntimeError: &lt;boom&gt;" in html
    assert 'id="probes"' in html and "is_vowel" not in html  # the manifest wins over a stale probes.json
    assert "lens.json does not follow the contract (KeyError" in html
    assert "surprisal.json does not follow the contract (KeyError: &#x27;histogram&#x27;)" in html
    assert "Not run yet: no <code>capacity.json</code>" in html
    assert "Not run yet: no <code>born_again.json</code>" in html  # half of the distillation section
    assert "Distillation as a 2×2 on equal tokens (32,768 per offspring)" in _text(html)
    assert "Not in this report yet: capacity, probes, born_again." in html
    assert (
        '<td class="status-failed">failed</td>' in html and '<td class="status-not-run">not run</td>' in html
    )


def test_figures_are_the_instruments_own_plots_of_the_json(full_page, tmp_path):
    _, html = full_page
    lens = contract_results()["lens"]
    paths = plot_lens(lens, tmp_path / "lens.png")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    svg = paths[1].read_bytes()
    assert b"logit lens" in svg and b"tuned lens" in svg
    section = html[html.index('id="lens"') : html.index('id="probes"')]
    assert f'src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}"' in section


def test_report_depends_on_the_demo_manifest_only():
    """Arrows point down: the report reads the manifest, never the demo's steps or the CLI."""
    imported = set()
    for path in (Path(__file__).parents[1] / "src/bitlens/report").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    demo_or_cli = {m for m in imported if m.startswith(("bitlens.demo", "bitlens.cli"))}
    assert demo_or_cli == {"bitlens.demo.manifest"}
    assert list(STEP_NAMES) == [
        "train",
        "compression",
        "surprisal",
        "prequential",
        "dynamics",
        "capacity",
        "lens",
        "probes",
        "offspring",
        "distillation",
        "born_again",
        "collapse",
        "evolution",
        "generalisation",
    ]


def test_learned_coder_worse_than_classical_is_read_as_more_bits(tmp_path):
    results = {"compression": contract_results()["compression"]}
    results["compression"]["rows"][2]["bits_per_byte"] = 3.0  # offline now loses to xz (2.5)
    html = render_report(write_results(tmp_path / "d", results))
    assert "codes at 3.000 bits/byte, 20% more bits than the best classical compressor" in _text(html)


def test_fmt():
    assert [fmt(None), fmt(True), fmt(1234567), fmt(2.5), fmt(1234.4), fmt(3.2e9), fmt(float("nan"))] == [
        "–",
        "yes",
        "1,234,567",
        "2.500",
        "1,234",
        "3.2e+09",
        "nan",
    ]


def test_report_command(tmp_path, capsys):
    folder = write_results(tmp_path / "d", {"train": contract_results()["train"]})
    assert main(["report", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "report.html")
    html = (folder / "report.html").read_text()
    assert "Not run yet: no <code>compression.json</code>" in html
    assert main(["report", str(tmp_path / "nowhere")]) == 1
    assert "demo folder not found" in capsys.readouterr().err
    (folder / "train.json").write_text("{torn")
    with pytest.raises(BitlensError, match="not valid JSON"):
        render_report(folder)


def test_chromium_detects_console_errors(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<script>console.error("deliberate"); notDefined();</script>'
        '<img src="missing-file.png"></body></html>'
    )
    errors = open_page(bad, tmp_path / "bad.png")
    joined = "\n".join(errors)
    assert "deliberate" in joined and "notDefined" in joined and "missing-file.png" in joined


def test_report_in_headless_chromium(full_page, tmp_path):
    path, _ = full_page
    shot = tmp_path / "report.png"
    assert open_page(path, shot) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_browser_test_skips_without_chromium_only_outside_ci(monkeypatch):
    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        chromium.require_chromium()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        chromium.require_chromium()


@pytest.mark.parametrize("command", ["demo", "report"])
def test_help_states_units(command, capsys):
    assert main([command, "--help"]) == 0
    assert "bits" in capsys.readouterr().out


def test_the_compression_section_says_what_the_network_saves_or_costs():
    from bitlens.report.sections import _compression_reading, _compression_table

    def result(saves: float) -> list[dict]:
        mixed = {"name": "bitlens online+mix", "bits_per_byte": 2.5, "roundtrip": True, "network_bits": 400}
        xz = {"name": "xz -9e", "bits_per_byte": 3.0, "roundtrip": True}
        return [{"input_bytes": 100, "rows": [xz, {**mixed, "network_saves_bits_per_byte": saves}]}]

    assert any(
        "network's input saves 0.053 bits/byte" in line for line in _compression_reading(result(0.053))
    )
    assert any(
        "network's input costs 0.002 bits/byte" in line for line in _compression_reading(result(-0.002))
    )
    table = _compression_table(result(0.053))
    assert table.headers[-1] == "network saves (bits/byte)" and table.rows[1][-1] == 0.053


def test_offspring_reading_of_one_seed_claims_no_interval():
    from bitlens.report.sections import _offspring_reading

    row = {
        "name": "surprisal/token",
        "heldout_bits_per_byte": 3.0,
        "heldout_bits_per_byte_ci95": None,
        "n_seeds": 1,
        "choice_bits": 10.0,
        "gain_over_random_bits_per_byte": {"estimate": 0.1, "ci95": None, "n_seeds": 1, "p_value": None},
        "gain_over_bigram_bits_per_byte": None,
    }
    line = _offspring_reading([{"strategies": [row], "distillation": [], "heldout_split": "test"}])[0]
    assert line == (
        "The best selection, surprisal/token, gives an offspring at 3.000 held-out bits/byte over 1 "
        "seeds on the test split: 0.100 (one seed: no interval, not a finding) bits/byte better than "
        "a random mask."
    )
