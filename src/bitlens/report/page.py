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

from bitlens.demo.manifest import ENTRY_POINTS, STEP_NAMES, Manifest, read_manifest, result_path
from bitlens.errors import BitlensError
from bitlens.report.findings import findings
from bitlens.report.plots import figure_data_uri
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
.absent { padding: 10px 14px; background: #fff6e5; border-left: 4px solid #d9a13b; }
.failed { padding: 10px 14px; background: #fdecec; border-left: 4px solid #c44; }
.status-done, .status-reused { color: #2a7a3b; }
.status-failed { color: #b22; }
nav ol { columns: 2; font-size: 14px; }
ol.findings li { margin: 6px 0; }
ol.findings em { color: #4a5263; }
"""


@dataclass
class StepState:
    """What the demo folder says about one step: its status, error and result (if any)."""

    name: str
    status: str  # "done" | "failed" | "not run"
    result: dict | None
    error: str | None = None


def _visible(text: str) -> str:
    """Corpus text made printable (control bytes shown as \\xNN), then HTML-escaped."""
    return escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def load_states(run_dir: str | Path) -> tuple[Manifest | None, dict[str, StepState]]:
    """The demo manifest (None if the folder has none) and the state of every step, read from the
    JSON files. The manifest is the truth: a step it records as failed shows no stale result."""
    run = Path(run_dir)
    if not run.is_dir():
        raise BitlensError(f"demo folder not found: {run}")
    manifest = read_manifest(run)
    states = {}
    for name in STEP_NAMES:
        record = manifest.steps.get(name) if manifest else None
        path = result_path(run, name)
        result = None
        if path.exists() and (record is None or record.status == "done"):
            try:
                result = json.loads(path.read_text())
            except json.JSONDecodeError:
                raise BitlensError(f"{path} is not valid JSON; re-run its step with --redo {name}") from None
        failed = record is not None and record.status == "failed"
        status = "failed" if failed else "done" if result is not None else "not run"
        states[name] = StepState(name, status, result, record.error if record else None)
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


def _figures(section: Section, results: list[dict]) -> list[str]:
    """Data URIs of the section's figures: its plot functions run on its first result (on all of
    them for a section of several steps)."""
    data: Any = results if len(section.steps) > 1 else results[0]
    return [figure_data_uri(plot, data) for plot in section.plots]


def _command(section: Section, manifest: Manifest | None, result: dict | None) -> str:
    quick = " --quick" if manifest and manifest.quick else ""
    seed = f" --seed {manifest.seed if manifest else 0}"
    if section.key == "train":
        t = result or {}
        return (
            f"bitlens train --preset {t.get('preset', 'small')} --steps {t.get('steps', '?')}{seed} "
            "--out DIR/model"
        )
    redo = " ".join(f"--redo {s}" for s in section.steps)
    entry = ENTRY_POINTS[section.steps[0]]
    return f"bitlens demo --out DIR{quick}{seed} {redo}  (calls {entry})"


def _absent(states: list[StepState]) -> str:
    lines = []
    for st in states:
        if st.status == "failed":
            lines.append(f"The step <code>{escape(st.name)}</code> failed: {_visible(st.error or '')}")
        else:
            lines.append(f"Not run yet: no <code>{escape(st.name)}.json</code> in this folder.")
    css = "failed" if any(st.status == "failed" for st in states) else "absent"
    return f'<div class="{css}">' + "<br>".join(lines) + "</div>"


def render_section(section: Section, states: dict[str, StepState], manifest: Manifest | None) -> str:
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
        uris = _figures(section, results)
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as e:
        files = ", ".join(f"{s}.json" for s in section.steps)
        problem = _visible(f"{type(e).__name__}: {e}")
        return (
            head + f'<div class="failed">The result in {escape(files)} does not follow the contract '
            f"({problem}).</div>" + command
        )
    figures = "".join(f'<img class="figure" alt="{escape(section.title)}" src="{u}">' for u in uris)
    partial = [st for st in own if st.result is None]
    return (
        head
        + figures
        + f'<div class="reading">{reading}</div>'
        + table
        + (_absent(partial) if partial else "")
        + command
    )


def _status_table(states: dict[str, StepState], manifest: Manifest | None) -> str:
    rows = []
    for name, st in states.items():
        record = manifest.steps.get(name) if manifest else None
        seconds = record.seconds if record else None
        rows.append(
            f"<tr><td>{escape(name)}</td><td><code>{escape(ENTRY_POINTS[name])}</code></td>"
            f'<td class="status-{st.status.replace(" ", "-")}">{escape(st.status)}</td>'
            f'<td class="num">{escape(fmt(seconds))}</td></tr>'
        )
    return (
        "<table><thead><tr><th>step</th><th>entry point</th><th>status</th><th>seconds</th></tr>"
        "</thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def render_findings(states: dict[str, StepState]) -> str:
    """The Findings: each question, its answer with interval, its caveat, a link to its section."""
    items = []
    for f in findings({name: st.result for name, st in states.items()}):
        caveat = f" <em>{_visible(f.caveat)}</em>" if f.caveat else ""
        items.append(
            f"<li><strong>{escape(f.question)}</strong> {_visible(f.answer)}{caveat} "
            f'<a href="#{escape(f.section)}">(section)</a></li>'
        )
    return f'<h2 id="findings">Findings</h2><ol class="findings">{"".join(items)}</ol>'


def render_report(run_dir: str | Path) -> str:
    """The report page of a demo folder, as a string (reads only the folder's JSON files)."""
    manifest, states = load_states(run_dir)
    absent = [n for n, st in states.items() if st.status != "done"]
    mode = "quick" if manifest and manifest.quick else "full"
    seed, corpus, corpus_bytes = (
        ("?", "?", None) if manifest is None else (manifest.seed, manifest.corpus, manifest.corpus_bytes)
    )
    summary = (
        f"{mode} demo, seed {seed}, corpus {corpus} ({fmt(corpus_bytes)} bytes). Every number and "
        f"figure below is read from the JSON files in this folder. All figures in bits."
    )
    nav, body = [], []
    for question, sections in QUESTIONS:
        body.append(f"<h2>{escape(question)}</h2>")
        for section in sections:
            nav.append(f'<li><a href="#{section.key}">{escape(section.title)}</a></li>')
            body.append(render_section(section, states, manifest))
    not_yet = f'<p class="absent">Not in this report yet: {escape(", ".join(absent))}.</p>' if absent else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>bitlens report</title>'
        f"<style>{CSS}</style></head><body><main>"
        f'<h1>bitlens report</h1><p class="lead">{_visible(summary)}</p>{not_yet}'
        f"{render_findings(states)}"
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
