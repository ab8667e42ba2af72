"""Training: schedule, determinism, resume after kill -9, atomic checkpoints, safe loading."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from bitlens.errors import BitlensError
from bitlens.model import GPT
from bitlens.runs import CHECKPOINT_FILE, atomic_write_bytes, load_run
from bitlens.train import TrainConfig, lr_at, train, train_run

SRC = str(Path(__file__).resolve().parents[1] / "src")
OVERRIDES = {
    "checkpoint_interval": 5,
    "eval_interval": 20,
    "eval_bytes": 1024,
    "log_interval": 5,
    "batch_size": 8,
    "threads": 1,
}
RUN_SCRIPT = f"""
import sys
from pathlib import Path
from bitlens.train import train_run
data = Path(sys.argv[1]).read_bytes()
train_run(data, sys.argv[2], preset="tiny", steps=int(sys.argv[3]), seed=5,
          resume=sys.argv[4] == "1", train_overrides={OVERRIDES!r})
"""


def _run(corpus: Path, out: Path, steps: int, resume: bool) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, str(corpus), str(out), str(steps), "1" if resume else "0"], env=env
    )


def _checkpoint_step(path: Path) -> int:
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(json.loads(f.metadata()["step"]))
    except Exception:
        return 0


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    assert lr_at(55, cfg) == pytest.approx(0.55)


def test_training_lowers_loss_and_reports_bits(shakespeare, micro_config):
    torch.manual_seed(0)
    model = GPT(micro_config)
    data = torch.frombuffer(bytearray(shakespeare), dtype=torch.uint8)
    cfg = TrainConfig(
        steps=200, batch_size=16, lr=3e-3, warmup_steps=5, eval_interval=100, eval_bytes=2048, log_interval=10
    )
    r = train(model, data[:18000], cfg, val_data=data[18000:])
    assert r.metrics[0]["train_bits_per_byte"] > 6.0  # near-uniform at the start (8 bits)
    assert r.val_bits_per_byte < 4.5  # below the ~4.5 bits/byte of a byte-frequency model
    assert r.tokens == 200 * 16 * 32
    assert r.flops == pytest.approx(r.tokens * model.flops_per_token())
    assert {"step", "tokens", "flops", "train_bits_per_byte"} <= set(r.metrics[-1])
    assert "val_bits_per_byte" in r.metrics[-1]


def test_same_seed_same_weights(shakespeare, tmp_path):
    a = train_run(shakespeare, tmp_path / "a", preset="tiny", steps=6, seed=3, train_overrides=OVERRIDES)
    b = train_run(shakespeare, tmp_path / "b", preset="tiny", steps=6, seed=3, train_overrides=OVERRIDES)
    assert (tmp_path / "a/model.safetensors").read_bytes() == (tmp_path / "b/model.safetensors").read_bytes()
    assert a.val_bits_per_byte == b.val_bits_per_byte


def test_resume_after_kill_9_gives_identical_weights(shakespeare, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare)
    steps = 30
    ref = _run(corpus, tmp_path / "ref", steps, resume=False)
    assert ref.wait(timeout=300) == 0

    run = tmp_path / "killed"
    proc = _run(corpus, run, steps, resume=False)
    deadline = time.time() + 240
    while _checkpoint_step(run / CHECKPOINT_FILE) < 10 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(0.05)  # land somewhere inside a step or a checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model.safetensors").exists()
    killed_at = _checkpoint_step(run / CHECKPOINT_FILE)
    assert 10 <= killed_at < steps

    resumed = _run(corpus, run, steps, resume=True)
    assert resumed.wait(timeout=300) == 0
    assert (run / "model.safetensors").read_bytes() == (tmp_path / "ref/model.safetensors").read_bytes()
    steps_logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == sorted(set(steps_logged)) and steps_logged[-1] == steps


def test_existing_run_needs_resume(shakespeare, tmp_path):
    train_run(shakespeare, tmp_path / "r", preset="tiny", steps=2, train_overrides=OVERRIDES)
    with pytest.raises(BitlensError, match="--resume"):
        train_run(shakespeare, tmp_path / "r", preset="tiny", steps=2, train_overrides=OVERRIDES)


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


class _Payload:
    def __reduce__(self):
        return (open, (os.environ["BITLENS_PWNED"], "w"))


def test_pickled_weights_are_never_unpickled(shakespeare, tmp_path, monkeypatch):
    train_run(shakespeare, tmp_path / "r", preset="tiny", steps=2, train_overrides=OVERRIDES)
    marker = tmp_path / "pwned"
    monkeypatch.setenv("BITLENS_PWNED", str(marker))
    (tmp_path / "r/model.safetensors").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(BitlensError, match="safetensors"):
        load_run(tmp_path / "r")
    assert not marker.exists()


def test_no_unpickling_calls_in_the_package():
    src = Path(SRC) / "bitlens"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "pickle.load" not in text and "torch.load(" not in text, path


def test_train_restores_the_torch_settings(shakespeare, micro_config):
    data = torch.frombuffer(bytearray(shakespeare), dtype=torch.uint8)
    threads, kernels = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        train(
            GPT(micro_config), data, TrainConfig(steps=2, batch_size=2, threads=threads + 1, log_interval=1)
        )
        assert torch.get_num_threads() == threads
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(kernels)


def test_resume_refuses_other_steps_or_seed(shakespeare, tmp_path, capsys):
    from bitlens.cli import main

    first = train_run(shakespeare, tmp_path / "r", preset="tiny", steps=3, seed=4, train_overrides=OVERRIDES)
    weights = (tmp_path / "r/model.safetensors").read_bytes()
    with pytest.raises(BitlensError, match=r"--steps 5 \(recorded: 3\)"):
        train_run(shakespeare, tmp_path / "r", preset="tiny", steps=5, resume=True)
    with pytest.raises(BitlensError, match=r"--seed 9 \(recorded: 4\)"):
        train_run(shakespeare, tmp_path / "r", preset="tiny", seed=9, resume=True)
    # the recorded values (or none) are fine: the finished run resumes to the same weights
    again = train_run(shakespeare, tmp_path / "r", preset="tiny", steps=3, seed=4, resume=True)
    assert again.val_bits_per_byte == first.val_bits_per_byte
    assert (tmp_path / "r/model.safetensors").read_bytes() == weights
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(shakespeare)
    capsys.readouterr()
    args = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "r"), "--resume"]
    assert main(args + ["--steps", "50"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps 50 (recorded: 3)" in err
    assert main(args) == 0
