from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from bitlens.model import GPT, GPTConfig

DATA_DIR = Path(__file__).parent / "data"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def shakespeare() -> bytes:
    """20 KB of Tiny Shakespeare, bundled with the tests."""
    return (DATA_DIR / "shakespeare-20k.txt").read_bytes()


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Import a script of benchmarks/ (not a package) by file name, e.g. "compression"."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def micro_config() -> GPTConfig:
    return GPTConfig(block_size=32, n_layer=2, n_head=2, n_embd=32)


@pytest.fixture
def micro_model(micro_config: GPTConfig) -> GPT:
    torch.manual_seed(0)
    return GPT(micro_config).eval()


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory, shakespeare) -> dict[str, Path]:
    """The tiny Hugging Face models of `hf_helpers.tiny_model_dirs`, built once per session
    (tests only read them)."""
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from hf_helpers import tiny_model_dirs

    return tiny_model_dirs(shakespeare[:6000].decode(), tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="session")
def hf_models(hf_dirs) -> dict:
    """Every loadable model of `hf_dirs` (all but the pickled one), loaded once per session."""
    from bitlens.runs import load_model

    return {name: load_model(f"hf:{path}") for name, path in hf_dirs.items() if name != "pickled"}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one torch thread is faster than two fighting over a busy machine (use with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
