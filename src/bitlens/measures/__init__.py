"""Information measures, one module per measure, every figure in bits.

Each measure takes a frozen `XConfig` (`XConfig.quick()` / `XConfig.full()`, seed included) and
returns a result dataclass whose `to_dict()` is its JSON; plot functions take that JSON.

- `sources`: synthetic byte sources with an exactly known entropy rate (the known answers).
- `surprisal`: per-byte surprisal and predictive entropy of a trained model.
- `prequential`: the online (prequential) description length of a corpus, and two-part codes.
- `weights_code`: the weights as an entropy-coded, quantised file (the real two-part code) and
  the compression (Occam) bound computed from its size.
- `dynamics`: information gained per token during training (Rho-1's four classes).
- `capacity`: memorisation capacity on uniformly random bytes, as the slope of capacity against
  parameters (bits per parameter) over seeds, at fp32, bf16, int8 and int4.
- `validate`: the known-answer checks, runnable from the CLI.
- `lens`: logit lens and tuned lens, per layer (cross-entropy, entropy, KL to the output).
- `probes`: MDL probes (online codelength per layer) with control tasks and selectivity, on
  held-out text, of the text properties in `properties`.
- `generalisation` and `cmi`: the f-CMI generalisation bound and per-window membership bits.
"""
