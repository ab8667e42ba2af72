"""Parent → offspring: selecting data, writing synthetic data, distilling, and model collapse.

Modules: `select` (scores and selection), `synth` (sampling), `distill` (targets, KL),
`budget` (FLOPs and fitness), `policy` (the genome and its evaluation), `compare` (strategies
side by side), `collapse` (recursive training on generated data), `study_parent` (a parent
trained for the distillation studies), `distill_study` (labels × inputs as a 2×2) and
`born_again` (offspring of the parent's own size, generation after generation).
"""
