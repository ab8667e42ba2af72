"""Parent → offspring: selecting data, writing synthetic data, distilling, and model collapse.

Modules: `select` (scores and selection), `synth` (sampling), `distill` (targets, KL),
`budget` (FLOPs and fitness), `policy` (the genome and its evaluation), `compare` (strategies
side by side) and `collapse` (recursive training on generated data).
"""
