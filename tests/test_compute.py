"""Compute is measured like quality: images forward and backward and wall time, one-time
setup apart from the request, in every run and in the cost ratio to a retrain."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import dau
from dau.compute import ComputeMeter


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), x


def test_the_meter_counts_images_forward_and_backward_per_phase() -> None:
    model = Pair()
    meter = ComputeMeter(model)
    model(torch.rand(5, 4))[0].sum().backward()  # request: 5 forward, 5 backward
    with meter.phase("setup"):
        with torch.no_grad():
            model(torch.rand(7, 4))  # setup: forward only
        model(torch.rand(2, 4))[0].sum().backward()
    state = meter.close()
    assert (state["request"]["forward_images"], state["request"]["backward_images"]) == (5, 5)
    assert (state["setup"]["forward_images"], state["setup"]["backward_images"]) == (9, 2)
    model(torch.rand(3, 4))  # closed: no longer counted
    resumed = ComputeMeter(model, state)
    model(torch.rand(1, 4))
    assert resumed.close()["request"]["forward_images"] == 6
    with pytest.raises(ValueError, match="phase"), resumed.phase("later"):
        pass


def test_a_frozen_copy_is_counted_and_a_repeat_for_a_resume_is_not() -> None:
    import copy

    model = Pair()
    meter = ComputeMeter(model)
    with meter.unhooked():  # a copy made without the meter's hook, then watched
        clone = copy.deepcopy(model)
    meter.watch(clone)
    clone(torch.rand(4, 4))
    model(torch.rand(1, 4))[0].sum().backward()
    with meter.uncounted():
        model(torch.rand(8, 4))[0].sum().backward()
        clone(torch.rand(8, 4))
    state = meter.close()
    assert (state["request"]["forward_images"], state["request"]["backward_images"]) == (5, 1)
    clone(torch.rand(2, 4))  # closed: the copy is no longer counted either
    model(torch.rand(2, 4))
    assert meter.state()["request"]["forward_images"] == 5


def test_runs_record_their_compute_and_eval_reports_the_cost_ratio(tiny_config, tmp_path, cli) -> None:
    original = dau.train(tiny_config(), runs_dir=tmp_path, progress=False)
    retrain = dau.train(tiny_config(forget="random:24", exclude_forget=True), runs_dir=tmp_path,
                        progress=False)
    train_images = len(original.load_plan().train)
    request = original.manifest["compute"]["request"]
    assert request["forward_images"] == request["backward_images"] == 2 * train_images
    assert request["seconds"] == pytest.approx(original.manifest["timings"]["train_seconds"])

    fast = {"epochs": 1, "batch_size": 32, "attacker_pretrain_iters": 4, "device": "cpu",
            "progress": False, "runs_dir": tmp_path}
    first = dau.unlearn(original.path, forget="random:24", method="dau", **fast)
    setup = first.compute["setup"]
    assert setup["forward_images"] > 0 and setup["seconds"] > 0 and first.compute["reused_setup"] is None
    assert first.compute["request"]["backward_images"] > 0
    second = dau.unlearn(original.path, forget="random:24", method="dau", **fast)  # cached attacker
    assert second.compute["setup"]["forward_images"] == 0
    assert second.compute["reused_setup"]["forward_images"] == setup["forward_images"]
    ft = dau.unlearn(original.path, forget="random:24", method="ft", **fast)
    assert ft.compute["request"]["backward_images"] == len(ft.split.retain)  # one epoch

    code, out, err = cli("eval", str(second.run.path), str(ft.run.path), "--reference",
                         str(retrain.path), "--device", "cpu", "--json", "-q")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    retrain_seconds = retrain.manifest["compute"]["request"]["seconds"]
    for judged, result in zip(runs, (second, ft), strict=True):
        cost = result.compute["request"]["seconds"]
        assert judged["gap"]["cost_ratio"] == pytest.approx(cost / retrain_seconds)
    assert runs[0]["cost"]["one_time_reused"] and runs[0]["gap"]["cost_ratio_with_setup"] > \
        runs[0]["gap"]["cost_ratio"]
    assert "Cost+setup" in err
