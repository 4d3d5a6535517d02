"""Every Python example of the README and of docs/ runs, as written and in order (later
examples use what earlier ones made), in one directory holding the files the examples name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SOURCES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = [(path, block) for path in SOURCES
            for block in re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)]
BLOCKS = [block for _, block in EXAMPLES]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' files: an ImageFolder tree ``photos``, a torchvision ResNet-18 state
    dict ``my_model.pt`` for its classes and a deletion request ``request.txt``."""
    import torchvision

    import dau
    from dau.data.formats import write_image_folder

    root = tmp_path_factory.mktemp("readme")
    data = dau.load_dataset("synthetic:classes=4,channels=3,size=16,train=120,test=40,seed=3")
    photos = write_image_folder(root / "photos", data)
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), root / "my_model.pt")
    request = sorted((photos / "train").rglob("*.png"))[:6]
    (root / "request.txt").write_text("".join(f"{p}\n" for p in request))
    return root


NAMESPACE: dict[str, Any] = {"__name__": "__readme__"}


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3, "README.md lost its Python examples"


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(index: int, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DAU_DATA_WORKERS", "0")
    path, block = EXAMPLES[index]
    exec(compile(block, f"{path}:block{index}", "exec"), NAMESPACE)
    if "request-42" in BLOCKS[index]:
        assert (workdir / "runs" / "request-42" / "manifest.json").exists()
