"""The lineage store: one SQLite file per evolution run, the run's single source of truth.

Tables:
- `meta(key, value)`: the run's settings (JSON), checked on `--resume`, and its wall seconds.
- `generations(generation, parent_model, survivors, complete)`: which model curated the data of
  each generation (lineage mode) and the ids that survived it.
- `evaluations`: one row per genome, written as `pending` *before* it is evaluated and updated to
  `done` or `failed` (with the error) in its own committed transaction when it finishes. Holds the
  genome, its parents' ids, the evaluation seed, fitness, held-out bits/byte, FLOPs, tokens,
  seconds, timestamps and the path of the offspring's weights.

Every write is one committed transaction (WAL journal, synchronous=NORMAL: a killed process loses
nothing committed; only a power cut could lose the last few), so a run killed at any moment finds
each finished evaluation on disk and re-runs only the pending ones. Only the driver writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitlens.errors import BitlensError
from bitlens.evolve.genome import Genome, Proposal, Scored

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    generation INTEGER PRIMARY KEY,
    parent_model TEXT,
    survivors TEXT,
    complete INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    genome TEXT NOT NULL,
    parents TEXT NOT NULL,
    seed INTEGER NOT NULL,
    parent_model TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    fitness REAL,
    heldout_bits_per_byte REAL,
    flops REAL,
    tokens INTEGER,
    seconds REAL,
    created_at REAL NOT NULL,
    finished_at REAL,
    error TEXT,
    weights TEXT,
    result TEXT,
    kind TEXT NOT NULL DEFAULT 'new',
    UNIQUE (generation, idx)
);
"""


@dataclass(frozen=True)
class Evaluation:
    """One row of `evaluations` (fitness: higher is better; bits/byte and FLOPs of the offspring)."""

    id: int
    generation: int
    idx: int
    genome: Genome
    parents: tuple[int, ...]
    seed: int
    parent_model: str | None
    status: str
    fitness: float | None
    heldout_bits_per_byte: float | None
    flops: float | None
    tokens: int | None
    seconds: float | None
    error: str | None
    weights: str | None
    result: dict[str, Any] | None
    kind: str = "new"  # "new": a proposed genome; "reevaluation": a survivor scored again

    def scored(self) -> Scored:
        """As the strategy sees it (only a finished evaluation has a fitness)."""
        if self.fitness is None:
            raise BitlensError(f"evaluation {self.id} is {self.status}: it has no fitness to select on")
        return Scored(self.id, self.genome, self.fitness)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "generation": self.generation,
            "index": self.idx,
            "genome": self.genome,
            "parents": list(self.parents),
            "seed": self.seed,
            "parent_model": self.parent_model,
            "status": self.status,
            "fitness": self.fitness,
            "heldout_bits_per_byte": self.heldout_bits_per_byte,
            "flops": self.flops,
            "tokens": self.tokens,
            "seconds": self.seconds,
            "error": self.error,
            "weights": self.weights,
            "metrics": self.result,
            "kind": self.kind,
        }


_COLUMNS = (
    "id, generation, idx, genome, parents, seed, parent_model, status, fitness, "
    "heldout_bits_per_byte, flops, tokens, seconds, error, weights, result, kind"
)


def _row(r: tuple) -> Evaluation:
    return Evaluation(
        id=r[0],
        generation=r[1],
        idx=r[2],
        genome=json.loads(r[3]),
        parents=tuple(json.loads(r[4])),
        seed=r[5],
        parent_model=r[6],
        status=r[7],
        fitness=r[8],
        heldout_bits_per_byte=r[9],
        flops=r[10],
        tokens=r[11],
        seconds=r[12],
        error=r[13],
        weights=r[14],
        result=json.loads(r[15]) if r[15] else None,
        kind=r[16],
    )


class LineageStore:
    """Open (or create) the lineage database at `path`. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(evaluations)")}
            if "kind" not in columns:  # a store written before re-evaluations existed
                self._db.execute("ALTER TABLE evaluations ADD COLUMN kind TEXT NOT NULL DEFAULT 'new'")
        except sqlite3.DatabaseError as e:
            raise BitlensError(f"cannot open lineage store {self.path}: {e}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, statements: list[tuple[str, tuple]]) -> None:
        """Run the statements as one committed transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                self._db.execute(sql, args)

    # meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self._write([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))])

    # generations --------------------------------------------------------------------------
    def add_generation(
        self, generation: int, proposals: list[Proposal], seeds: list[int], parent_model: str | None
    ) -> None:
        """Record a generation's genomes as pending, atomically (all or none)."""
        now = time.time()
        stmts: list[tuple[str, tuple]] = [
            ("INSERT INTO generations (generation, parent_model) VALUES (?, ?)", (generation, parent_model))
        ]
        for i, (p, seed) in enumerate(zip(proposals, seeds, strict=True)):
            stmts.append(
                (
                    "INSERT INTO evaluations (generation, idx, genome, parents, seed, parent_model, status, "
                    "created_at, kind) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (
                        generation,
                        i,
                        json.dumps(p.genome),
                        json.dumps(list(p.parents)),
                        seed,
                        parent_model,
                        now,
                        p.kind,
                    ),
                )
            )
        self._write(stmts)

    def has_generation(self, generation: int) -> bool:
        q = "SELECT 1 FROM generations WHERE generation = ?"
        return self._db.execute(q, (generation,)).fetchone() is not None

    def generation_parent_model(self, generation: int) -> str | None:
        q = "SELECT parent_model FROM generations WHERE generation = ?"
        row = self._db.execute(q, (generation,)).fetchone()
        return row[0] if row else None

    def complete_generation(self, generation: int, survivors: list[int]) -> None:
        self._write(
            [
                (
                    "UPDATE generations SET survivors = ?, complete = 1 WHERE generation = ?",
                    (json.dumps(survivors), generation),
                )
            ]
        )

    def survivors(self, generation: int) -> list[int]:
        q = "SELECT survivors FROM generations WHERE generation = ? AND complete = 1"
        row = self._db.execute(q, (generation,)).fetchone()
        return json.loads(row[0]) if row else []

    def is_complete(self, generation: int) -> bool:
        q = "SELECT complete FROM generations WHERE generation = ?"
        row = self._db.execute(q, (generation,)).fetchone()
        return bool(row and row[0])

    # evaluations --------------------------------------------------------------------------
    def record(
        self,
        eval_id: int,
        status: str,
        metrics: dict[str, Any] | None,
        error: str | None,
        seconds: float,
        weights: str | None,
    ) -> None:
        """Store an evaluation's outcome ('done' with its metrics, or 'failed' with its error)."""
        m = metrics or {}
        self._write(
            [
                (
                    "UPDATE evaluations SET status = ?, fitness = ?, heldout_bits_per_byte = ?, flops = ?, "
                    "tokens = ?, seconds = ?, finished_at = ?, error = ?, weights = ?, result = ? "
                    "WHERE id = ?",
                    (
                        status,
                        m.get("fitness"),
                        m.get("heldout_bits_per_byte"),
                        m.get("flops"),
                        m.get("tokens"),
                        seconds,
                        time.time(),
                        error,
                        weights,
                        json.dumps(m) if m else None,
                        eval_id,
                    ),
                )
            ]
        )

    def evaluations(self, generation: int | None = None, status: str | None = None) -> list[Evaluation]:
        sql, args = f"SELECT {_COLUMNS} FROM evaluations WHERE 1=1", list[Any]()
        if generation is not None:
            sql += " AND generation = ?"
            args.append(generation)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return [_row(r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def best_saved(self, generation: int) -> Evaluation | None:
        """The fittest finished evaluation of `generation` whose offspring weights were saved
        (ties: the older); lineage mode makes it the next generation's parent."""
        done = [e for e in self.evaluations(generation, "done") if e.weights and e.fitness is not None]
        return max(done, key=lambda e: (e.fitness, -e.id)) if done else None

    def get(self, ids: list[int]) -> list[Evaluation]:
        by_id = {e.id: e for e in self.evaluations()}
        return [by_id[i] for i in ids]

    def totals(self) -> dict[str, float]:
        """FLOPs, tokens and evaluation counts over all finished evaluations so far."""
        flops, tokens, done = self._db.execute(
            "SELECT COALESCE(SUM(flops), 0), COALESCE(SUM(tokens), 0), COUNT(*) FROM evaluations "
            "WHERE status = 'done'"
        ).fetchone()
        failed = self._db.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'failed'").fetchone()[0]
        return {"flops": float(flops), "tokens": int(tokens), "done": int(done), "failed": int(failed)}
