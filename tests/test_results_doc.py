"""benchmarks/RESULTS.md: every table names a committed record, and its numbers are the record's.

Pure file parsing: a number edited by hand in RESULTS.md without its record fails here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "benchmarks" / "RESULTS.md"
RECORDS = ROOT / "benchmarks" / "results"
PLOTS = {".png", ".svg"}  # named beside their records, hold no numbers to check
PATH_RE = re.compile(r"benchmarks/results/[\w.\-/]+[\w]")
# A number standing on its own: not part of a word such as enwik8 or book1.
NUMBER_RE = re.compile(r"(?<![\w.])[-−+]?\d[\d,]*(?:\.\d+)?(?![\w])")


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, lines) for each part of the document between two headings of any level."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if line.startswith("#"):
            out.append((line.lstrip("#").strip(), []))
        else:
            out[-1][1].append(line)
    return out


def tables(lines: list[str]) -> list[list[list[str]]]:
    """Markdown tables in `lines`: rows of stripped cells, the |---| rule dropped."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def numbers(cell: str) -> list[tuple[float, int]]:
    """(value, decimals printed) of each number in a cell, code spans and bold marks removed."""
    text = re.sub(r"`[^`]*`", "", cell).replace("**", "")
    out = []
    for tok in NUMBER_RE.findall(text):
        tok = tok.replace(",", "").replace("−", "-")
        out.append((float(tok), len(tok.split(".")[1]) if "." in tok else 0))
    return out


def printed_as(value: float, printed: float, decimals: int, source_decimals: int | None = None) -> bool:
    """Whether `value` (from a record holding `source_decimals`, None = full float) prints as `printed`."""
    slack = 0.5 * 10.0**-decimals + (0.0 if source_decimals is None else 0.5 * 10.0**-source_decimals)
    return math.isclose(value, printed) or abs(value - printed) <= slack * (1 + 1e-9)


def read_stdout_table(path: Path) -> dict[str, Any]:
    """The table benchmarks/compression.py prints, as {file: {"input_bytes", "rows"}} like its JSON.

    Columns are fixed width (name 20, bits/byte 10, w/ model 10, network 9, ...); bits/byte has
    4 decimals, network 3: kept as "decimals" so a check allows the record's own rounding.
    """
    out: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for line in path.read_text().splitlines():
        head = re.match(r"(\S+): first ([\d,]+) bytes$", line)
        if head:
            current = {"input_bytes": int(head[2].replace(",", "")), "rows": []}
            out[head[1]] = current
        elif current is not None and line.strip() and not line.startswith("compressor"):
            network = line[40:49].strip()
            current["rows"].append(
                {
                    "name": line[:20].strip(),
                    "bits_per_byte": float(line[20:30]),
                    "network_bits_per_byte": float(network) if network else None,
                    "decimals": (4, 3),
                }
            )
    return out


def load_record(rel: str) -> dict[str, Any]:
    """A record under benchmarks/results/: its JSON, or the printed table of compression.py."""
    path = ROOT / rel
    if path.suffix == ".json":
        record: dict[str, Any] = json.loads(path.read_text())
        return record
    return read_stdout_table(path)


def leaves(obj: object) -> list[float]:
    """Every number in a JSON document."""
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in leaves(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in leaves(v)]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return [float(obj)]
    return []


def file_stem(key: str) -> str:
    """'calgary/book1' -> 'book1', 'enwik8-head.txt' -> 'enwik8-head'."""
    return key.rsplit("/", 1)[-1].removesuffix(".txt")


DOC_TEXT = DOC.read_text()
SECTIONS = sections(DOC_TEXT)
TABLE_SECTIONS = [(h, lines, t) for h, lines in SECTIONS for t in tables(lines)]


def test_every_named_record_exists_and_every_record_is_named() -> None:
    named = set(PATH_RE.findall(DOC_TEXT))
    assert named, "RESULTS.md names no record"
    missing = sorted(p for p in named if not (ROOT / p).is_file())
    assert not missing, f"named in RESULTS.md but not committed: {missing}"
    unnamed = sorted(
        str(p.relative_to(ROOT)) for p in RECORDS.iterdir() if str(p.relative_to(ROOT)) not in named
    )
    assert not unnamed, f"committed but not named in RESULTS.md: {unnamed}"


def test_every_table_names_a_json_record_and_a_command() -> None:
    assert len(TABLE_SECTIONS) >= 5
    for heading, lines, _ in TABLE_SECTIONS:
        text = "\n".join(lines)
        assert re.search(r"benchmarks/results/[\w.\-]+\.json", text), (
            f"table in '{heading}' names no JSON record"
        )
        assert re.search(r"python benchmarks/\w+\.py|bitlens \w+", text), (
            f"table in '{heading}' names no command"
        )


def test_removed_figures_carry_no_numbers_or_tables() -> None:
    heading, lines = next(s for s in SECTIONS if s[0].startswith("Not yet re-run"))
    assert not tables(lines)
    prose = re.sub(r"`[^`]*`", "", "\n".join(lines))
    assert not [n for n in NUMBER_RE.findall(prose) if "." in n or len(n) > 2], heading


def compression_tables() -> list[tuple[str, list[str], list[list[str]]]]:
    return [(h, lines, t) for h, lines, t in TABLE_SECTIONS if "gzip -9" in t[0]]


@pytest.mark.parametrize("table_index", range(4))
def test_compression_table_cells_match_their_record(table_index: int) -> None:
    """Each bits/byte (and bracketed network bits/byte) is the record's, for that file and coder."""
    heading, lines, table = compression_tables()[table_index]
    header, body = table[0], table[1:]
    section_records = sorted(set(PATH_RE.findall("\n".join(lines))))
    record_col = header.index("record") if "record" in header else None
    checked = 0
    for row in body:
        label = row[0].replace("**", "")
        stem = label.split()[0]
        paths = PATH_RE.findall(row[record_col]) if record_col is not None else section_records
        entries = []
        for rel in paths:
            for key, entry in load_record(rel).items():
                if file_stem(key) == stem:
                    entries.append(entry)
        assert entries, f"{heading}: no record holds {stem}"
        size = re.search(r"\(([\d,]+) B\)", label)
        if size:
            assert {e["input_bytes"] for e in entries} == {int(size[1].replace(",", ""))}, label
        for col, cell in enumerate(row[1:], start=1):
            if col == record_col or cell in {"–", "-"}:
                continue
            coder = header[col].replace(" (network)", "")
            found = [
                (r, e["input_bytes"])
                for e in entries
                for r in e["rows"]
                if r["name"] in {coder, f"bitlens {coder}"}
            ]
            assert len(found) == 1, f"{heading}: {stem} / {coder}: {len(found)} record rows"
            rec, n_bytes = found[0]
            bpb_dec, net_dec = rec.get("decimals", (None, None))
            printed = numbers(cell)
            assert printed_as(rec["bits_per_byte"], *printed[0], bpb_dec), (
                f"{heading}: {stem} / {coder}: {cell}"
            )
            if len(printed) == 2:
                net = rec.get("network_bits_per_byte") or rec["network_bits"] / n_bytes
                assert printed_as(net, *printed[1], net_dec), f"{heading}: {stem} / {coder} network: {cell}"
            checked += len(printed)
    assert checked >= 24


def test_other_tables_hold_only_numbers_from_their_records() -> None:
    """Outside the compression tables every number in a table body (past the row labels) is one
    of its records'."""
    others = [(h, lines, t) for h, lines, t in TABLE_SECTIONS if "gzip -9" not in t[0]]
    assert others
    for heading, lines, table in others:
        named = set(PATH_RE.findall("\n".join(lines)))
        values = [v for rel in named if Path(rel).suffix not in PLOTS for v in leaves(load_record(rel))]
        for row in table[1:]:
            for cell in row[1:]:
                for printed, decimals in numbers(cell):
                    assert any(printed_as(v, printed, decimals) for v in values), (
                        f"{heading}: {printed} in {row}"
                    )


def test_a_hand_edited_number_is_caught() -> None:
    """The checks above are not vacuous: a changed digit no longer matches the record."""
    rec = json.loads((RECORDS / "compression-1mb-enwik8.json").read_text())["enwik8-head.txt"]["rows"]
    xz = next(r for r in rec if r["name"] == "xz -9e")["bits_per_byte"]
    assert printed_as(xz, 2.326, 3) and not printed_as(xz, 2.316, 3)
    book1 = read_stdout_table(RECORDS / "compression-1mb-book1.txt")["book1"]["rows"]
    bzip2 = next(r for r in book1 if r["name"] == "bzip2 -9")
    assert bzip2["bits_per_byte"] == 2.4205 and not printed_as(2.4205, 2.422, 3, 4)
    assert "| enwik8-head (1,000,000 B) | 2.846 | 2.251 | 2.326 |" in DOC_TEXT
