"""The issue's user story on a CIFAR-100 root in the real on-disk format (synthetic content):
``dau train --dataset cifar100``, ``dau unlearn --dataset cifar100 --class 3`` and
``--forget random:10%``, then ``dau eval`` of each against nothing but the run directories."""

import json

import pytest

from dau.checkpoint import load_run
from dau.data import formats, load_dataset


@pytest.fixture(scope="module")
def cifar100(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    formats.write_cifar100(root, n_train=1000, n_test=200, seed=4)
    return root


@pytest.mark.parametrize("forget", [["--class", "3"], ["--forget", "random:10%"]])
def test_unlearn_cifar100_end_to_end(cli, cifar100, tmp_path, forget):
    runs = tmp_path / "runs"
    code, out, err = cli("train", "--dataset", "cifar100", "--data-dir", str(cifar100),
                         "--width", "0.125", "--epochs", "1", "--batch-size", "64",
                         "--device", "cpu", "--runs-dir", str(runs), "--json", "-q")
    assert code == 0, err
    original = json.loads(out)["run"]
    # no --model: the original is found under --runs-dir by dataset
    code, out, err = cli("unlearn", "--dataset", "cifar100", *forget, "--epochs", "1",
                         "--batch-size", "32", "--attacker-iters", "3", "--noise-copies", "2",
                         "--device", "cpu", "--runs-dir", str(runs), "--json", "-q")
    assert code == 0, err
    result = json.loads(out)
    run = result["run"]
    manifest = json.loads((tmp_path / "runs" / run.split("/")[-1] / "manifest.json").read_text())
    assert manifest["parent"].endswith(original.split("/")[-1])
    assert manifest["kind"] == "dau" and manifest["status"] == "complete"
    plan = load_run(run).load_plan()
    labels = load_dataset("cifar100", cifar100).train.labels.numpy()
    if forget[0] == "--class":
        assert manifest["config"]["forget"] == "class:3"
        # exactly the class-3 samples of the training split (the rest of class 3 is validation)
        assert set(labels[plan.forget]) == {3}
        assert len(plan.forget) == int((labels[plan.train] == 3).sum()) > 0
    else:
        assert manifest["config"]["forget"] == "random:10%"
        assert len(plan.forget) == round(0.1 * len(plan.train))
    assert manifest["summary"]["attacker"]["source"] == "trained"
    code, out, err = cli("eval", run, "--json", "-q", "--device", "cpu")
    assert code == 0, err
    metrics = json.loads(out)["runs"][0]
    for key in ("UA", "RA", "TA", "MIA"):
        assert 0.0 <= metrics[key] <= 100.0
    test_labels = load_dataset("cifar100", cifar100).test.labels.numpy()
    expected_test = len(test_labels) - (int((test_labels == 3).sum()) if forget[0] == "--class" else 0)
    # class-wise forgetting drops the forgotten class from the test set
    assert metrics["n_samples"]["test"] == expected_test
