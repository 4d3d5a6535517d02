"""Every Python example of the README runs, as written, on data the test provides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples() -> None:
    assert BLOCKS, "README.md has no ```python block"


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples' files: an ImageFolder tree ``photos``, a torchvision ResNet-18 state
    dict ``my_model.pt`` for its classes and a deletion request ``request.txt``."""
    import torchvision

    import dau
    from dau.data.formats import write_image_folder

    data = dau.load_dataset("synthetic:classes=4,channels=3,size=16,train=120,test=40,seed=3")
    photos = write_image_folder(tmp_path / "photos", data)
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), tmp_path / "my_model.pt")
    request = sorted((photos / "train").rglob("*.png"))[:6]
    (tmp_path / "request.txt").write_text("".join(f"{p}\n" for p in request))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    assert (tmp_path / "runs" / "request-42" / "manifest.json").exists()
