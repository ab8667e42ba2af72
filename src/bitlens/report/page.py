"""The report page: one self-contained HTML file built only from a demo folder's JSON files.

Figures are inline data URIs (no network, no script), every string that comes from a result
(corpus text included) is HTML-escaped, and the page depends on nothing but the JSON, so
`bitlens report DIR` rebuilds exactly the page the demo wrote.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from bitlens.demo import read_manifest
from bitlens.errors import BitlensError
from bitlens.instruments import INSTRUMENTS, load_attr
from bitlens.report.plots import FALLBACK_PLOTS, figure_data_uri, plot_training
from bitlens.report.sections import QUESTIONS, Section, Table, fmt
from bitlens.runs import atomic_write_bytes

REPORT_FILE = "report.html"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       background: #f6f7f9; margin: 0; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 64px; background: #fff;
       box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-top: 12px; border-top: 2px solid #3366aa; }
h3 { font-size: 17px; margin: 26px 0 6px; }
p.lead { color: #4a5263; margin-top: 0; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
img.figure { display: block; max-width: 100%; height: auto; margin: 10px auto; }
.reading { margin: 8px 0; padding: 8px 12px; background: #f1f6ff; border-left: 4px solid #3366aa; }
.reading p { margin: 2px 0; }
.command { font-size: 13px; color: #4a5263; }
code { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: #f0f1f4;
       padding: 1px 4px; border-radius: 3px; }
code.passage { white-space: pre-wrap; word-break: break-word; display: inline-block; }
.missing { padding: 10px 14px; background: #fff6e5; border-left: 4px solid #d9a13b; }
.failed { padding: 10px 14px; background: #fdecec; border-left: 4px solid #c44; }
.status-done, .status-reused { color: #2a7a3b; }
.status-missing { color: #a06a00; }
.status-failed { color: #b22; }
nav ol { columns: 2; font-size: 14px; }
"""


@dataclass
class StepState:
    """What the demo folder says about one step: its status, error and result (if any)."""

    name: str
    status: str  # "done" | "missing" | "failed" | "not run"
    result: dict | None
    error: str | None = None


def _visible(text: str) -> str:
    """Corpus text made printable (control bytes shown as \\xNN), then HTML-escaped."""
    return escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def load_states(run_dir: str | Path) -> tuple[dict, dict[str, StepState]]:
    """The demo manifest (or {}) and the state of every step, read from the JSON files."""
    run = Path(run_dir)
    if not run.is_dir():
        raise BitlensError(f"demo folder not found: {run}")
    manifest = read_manifest(run) or {}
    states = {}
    for name in ["train", *INSTRUMENTS]:
        entry = manifest.get("steps", {}).get(name, {})
        path = run / f"{name}.json"
        result = None
        if path.exists():
            try:
                result = json.loads(path.read_text())
            except json.JSONDecodeError:
                raise BitlensError(f"{path} is not valid JSON; re-run its step with --redo {name}") from None
        status = entry.get("status") or ("done" if result is not None else "not run")
        if status in ("missing", "failed"):
            result = None  # the manifest is the truth: no stale figures for a step that did not run
        elif result is None:
            status = "not run"
        states[name] = StepState(name, status, result, entry.get("error"))
    return manifest, states


def _cell(value: Any, passage: bool = False) -> str:
    if passage and isinstance(value, str):
        return f'<td><code class="passage">{_visible(value)}</code></td>'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{escape(fmt(value))}</td>'
    return f"<td>{_visible(fmt(value))}</td>"


def render_table(table: Table) -> str:
    passage_cols = {i for i, h in enumerate(table.headers) if h == "text"}
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(_cell(v, i in passage_cols) for i, v in enumerate(row)) + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(section: Section, results: list[dict]) -> tuple[list[str], list[str]]:
    """Data URIs of the section's figures, and notes on any plot that had to fall back."""
    if section.key == "train":
        return [figure_data_uri(plot_training, results[0])], []
    instrument = INSTRUMENTS[section.steps[0]]
    data: Any = results if section.key == "collapse" else results[0]
    uris, notes = [], []
    for plot_name in instrument.plots:
        try:
            own = load_attr(instrument.module, plot_name)
            if own is not None:
                uris.append(figure_data_uri(own, data))
                continue
        except Exception as e:  # the instrument's figure failed: still show its numbers
            notes.append(f"{instrument.module}.{plot_name} failed ({type(e).__name__}: {e}); "
                         "showing a simple plot of the same JSON instead.")
        uris.append(figure_data_uri(FALLBACK_PLOTS[plot_name], data))
    return uris, notes


def _command(section: Section, manifest: dict, result: dict | None) -> str:
    quick = " --quick" if manifest.get("quick") else ""
    seed = f" --seed {manifest.get('seed', 0)}"
    if section.key == "train":
        t = result or {}
        return (f"bitlens train --preset {t.get('preset', 'small')} --steps {t.get('steps', '?')}{seed} "
                "--out DIR/model")
    redo = " ".join(f"--redo {s}" for s in section.steps)
    entry = INSTRUMENTS[section.steps[0]].entry_point
    return f"bitlens demo --out DIR{quick}{seed} {redo}  (calls {entry})"


def _absent(states: list[StepState]) -> str:
    lines = []
    for st in states:
        entry = INSTRUMENTS[st.name].entry_point if st.name in INSTRUMENTS else "bitlens.train.train_run"
        if st.status == "missing":
            lines.append(f"Not yet available: this build has no <code>{escape(entry)}</code>.")
        elif st.status == "failed":
            lines.append(f"The step <code>{escape(st.name)}</code> failed: {_visible(st.error or '')}")
        else:
            lines.append(f"Not run yet: no <code>{escape(st.name)}.json</code> in this folder.")
    css = "failed" if any(st.status == "failed" for st in states) else "missing"
    return f'<div class="{css}">' + "<br>".join(lines) + "</div>"


def render_section(section: Section, states: dict[str, StepState], manifest: dict) -> str:
    own = [states[s] for s in section.steps]
    results = [st.result for st in own if st.result is not None]
    head = f'<h3 id="{section.key}">{escape(section.title[:1].upper() + section.title[1:])}</h3>'
    first = results[0] if results else None
    command = f'<p class="command">Reproduce: <code>{escape(_command(section, manifest, first))}</code></p>'
    if not results:
        return head + _absent(own) + command
    try:
        table = render_table(section.table(results))
        reading = "".join(f"<p>{_visible(line)}</p>" for line in section.reading(results)[:2])
        uris, notes = _figures(section, results)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        files = ", ".join(f"{s}.json" for s in section.steps)
        problem = _visible(f"{type(e).__name__}: {e}")
        return (head + f'<div class="failed">The result in {escape(files)} does not follow the contract '
                f"({problem}).</div>" + command)
    figures = "".join(f'<img class="figure" alt="{escape(section.title)}" src="{u}">' for u in uris)
    partial = [st for st in own if st.result is None]
    return (head + figures + "".join(f'<p class="command">{_visible(n)}</p>' for n in notes)
            + f'<div class="reading">{reading}</div>' + table
            + (_absent(partial) if partial else "") + command)


def _status_table(states: dict[str, StepState], manifest: dict) -> str:
    rows = []
    for name, st in states.items():
        seconds = manifest.get("steps", {}).get(name, {}).get("seconds")
        entry = INSTRUMENTS[name].entry_point if name in INSTRUMENTS else "bitlens.train.train_run"
        rows.append(f"<tr><td>{escape(name)}</td><td><code>{escape(entry)}</code></td>"
                    f'<td class="status-{st.status.replace(" ", "-")}">{escape(st.status)}</td>'
                    f'<td class="num">{escape(fmt(seconds))}</td></tr>')
    return ("<table><thead><tr><th>step</th><th>entry point</th><th>status</th><th>seconds</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def render_report(run_dir: str | Path) -> str:
    """The report page of a demo folder, as a string (reads only the folder's JSON files)."""
    manifest, states = load_states(run_dir)
    missing = [n for n, st in states.items() if st.status in ("missing", "not run", "failed")]
    mode = "quick" if manifest.get("quick") else "full"
    corpus = manifest.get("corpus", "?")
    summary = (f"{mode} demo, seed {manifest.get('seed', '?')}, corpus {corpus} "
               f"({fmt(manifest.get('corpus_bytes'))} bytes). Every number and figure below is read from "
               f"the JSON files in this folder. All figures in bits.")
    nav, body = [], []
    for question, sections in QUESTIONS:
        body.append(f"<h2>{escape(question)}</h2>")
        for section in sections:
            nav.append(f'<li><a href="#{section.key}">{escape(section.title)}</a></li>')
            body.append(render_section(section, states, manifest))
    absent = (f'<p class="missing">Not in this report yet: {escape(", ".join(missing))}.</p>' if missing
              else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>bitlens report</title>'
        f"<style>{CSS}</style></head><body><main>"
        f"<h1>bitlens report</h1><p class=\"lead\">{_visible(summary)}</p>{absent}"
        f"<nav><ol>{''.join(nav)}</ol></nav>"
        f"{''.join(body)}"
        f"<h2>Steps</h2>{_status_table(states, manifest)}"
        "</main></body></html>\n"
    )


def build_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report.html` from the folder's JSON files; returns its path."""
    html = render_report(run_dir)
    path = Path(run_dir) / REPORT_FILE
    atomic_write_bytes(path, html.encode("utf-8"))
    return path
