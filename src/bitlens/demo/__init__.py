"""`bitlens demo`: train the default model, run every instrument, write the report.

- `manifest`: the steps' names, the entry point each calls, their JSON files and the manifest
  `demo.json` that records their status (read by the report too);
- `steps`: what each step runs, as one table;
- `run`: `run_demo`, which plans the steps, runs them with an overall ETA and writes the report.
"""
