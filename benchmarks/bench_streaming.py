"""Claims of streamed datasets (``imagefolder:ROOT``), checked side by side in one run:

1. Peak host memory of ``dau unlearn`` (``--method``, default ga, 1 epoch, ``random:10%``)
   on a streamed ImageFolder tree is flat in the number of images: 10,000 vs 50,000 RGB 64×64
   PNGs (``--quick``: 2,000 vs 10,000 at 32×32) give peaks whose ratio is well below the
   data's 5x, while the same pixels held in memory (the Python API ``dau.unlearn`` on the
   materialised dataset, against the same API on the stream) grow with N. Each command's
   whole process tree (the command, its supervised child, the DataLoader workers) is polled
   every 50 ms from /proc: peak of the sum of RSS, of the sum of PSS (shared pages counted
   once), and the largest single process's VmHWM.
2. One training epoch streams at close to the in-memory speed on Fashion-MNIST (``--quick``:
   digits) exported with ``write_image_folder``, and reaches the same accuracies (same pixels,
   same batch order). Images/s come from the run manifests (``timings.epoch_seconds``).
3. A process reading the small tree again and again (``iterate_batches``, six passes, with
   and without augmentation, with glibc's defaults as a library user has them and with the
   ``dau`` command's allocator policy) keeps its resident memory flat: RSS after the last
   pass over RSS after the first.

Every run is one at a time. Trees are written once under ``$DAU_BENCH_DIR`` (default
/tmp/dau-bench-streaming) and reused; runs are redone. The synthetic trees are written in
chunks of 5,000 images, chunk k drawn by ``synthetic_arrays(seed=k)`` (its own class
prototypes: the pixels' size, not their content, is what is measured).
``python benchmarks/bench_streaming.py [--quick] [--method M] [--repeats N] [--threads N]
[--json FILE]``; results and their reading: benchmarks/results/streaming/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

SCRATCH = Path(os.environ.get("DAU_BENCH_DIR", "/tmp/dau-bench-streaming"))
DAU = [sys.executable, "-m", "dau"]
MODEL = ["--arch", "resnet18", "--width", "0.125", "--seed", "1", "--batch-size", "256"]
CHUNK = 5_000
MIB = 2**20

# dau.unlearn through the Python API on the tree, streamed or materialised (argv: root, original
# run, method, "memory" or "stream"): the in-memory contrast of the same pixels.
API_UNLEARN = """
import sys, dau
from dau.checkpoint import load_run
from dau.data import Dataset, load_dataset
root, original, method, how = sys.argv[1:]
data = load_dataset("imagefolder:" + root)
if how == "memory":
    data = Dataset(data.info, data.train.materialize(), data.test.materialize())
model = load_run(original).load_model("cpu")
dau.unlearn(model, data, forget="random:10%", method=method, epochs=1, progress=False)
"""

# RSS (MiB) after each pass of iterate_batches over a tree (argv: root, passes, augment, tune).
HEAP_PASSES = """
import sys, torch
from pathlib import Path
import dau.allocator
from dau.data import load_dataset
from dau.data.loaders import iterate_batches
root, passes, augment, tune = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
if tune:
    dau.allocator.tune()
data = load_dataset(f"imagefolder:{root},hflip=true,crop_padding=4")
def rss():
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(ln for ln in status if ln.startswith("VmRSS")).split()[1]) / 1024
out = []
for _ in range(passes):
    for x, y in iterate_batches(data.train, torch.arange(len(data.train)), 256, augment=augment,
                                info=data.info, device="cpu"):
        pass
    out.append(rss())
print(out)
"""


# --------------------------------------------------------------------------------------------
# Peak memory of a process tree
# --------------------------------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent pids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children.get(pid, [])
    return pids


def _fields(path: str, names: tuple[str, ...]) -> dict[str, int]:
    """``name: value kB`` lines of a /proc file, in bytes (empty when the process is gone)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) * 1024 for k, _, v in (ln.partition(":") for ln in lines)
            if k in names}


def _cpu() -> tuple[float, float]:
    """(CPU seconds busy on the whole machine, CPU seconds of this process and its reaped
    children)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    own = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return ((sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"),
            sum(u.ru_utime + u.ru_stime for u in own))


def measure(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``, polling its process tree every 50 ms: wall time, peaks, its JSON stdout,
    and the cores other processes kept busy meanwhile (another user's load skews timings)."""
    busy0, own0 = _cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss = pss = single = procs = 0
    while proc.poll() is None:
        sample = [_fields(f"/proc/{p}/smaps_rollup", ("Rss", "Pss"))
                  | _fields(f"/proc/{p}/status", ("VmHWM",)) for p in _tree(proc.pid)]
        rss = max(rss, sum(s.get("Rss", 0) for s in sample))
        pss = max(pss, sum(s.get("Pss", 0) for s in sample))
        single = max([single] + [s.get("VmHWM", 0) for s in sample])
        procs = max(procs, sum(1 for s in sample if s))
        time.sleep(0.05)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    busy1, own1 = _cpu()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"cmd": " ".join(cmd), "wall_s": wall, "cpu_s": own1 - own0,
            "other_load_cores": max(0.0, (busy1 - busy0) - (own1 - own0)) / wall,
            "peak_rss_sum_mib": rss / MIB, "peak_pss_sum_mib": pss / MIB,
            "peak_single_mib": single / MIB, "max_processes": procs,
            "stdout": json.loads(out) if out.strip().startswith("{") else None}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def write_tree(root: Path, write: Callable[[Path], object]) -> Path:
    """``write(directory)`` fills a new directory, renamed to ``root`` once complete; a tree
    already at ``root`` is reused."""
    if not root.exists():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write(partial)
        partial.rename(root)
    return root


def write_synthetic(root: Path, n_train: int, n_test: int, size: int) -> None:
    """``write_image_folder``'s layout (``<part>/class_<label>/<position:06d>.png``), written
    chunk by chunk: chunk k is ``synthetic_arrays(seed=k)``, the test set chunk 0's."""
    from PIL import Image

    from dau.data.builtin import synthetic_arrays

    for k in range(0, n_train, CHUNK):
        x, y, xt, yt = synthetic_arrays(num_classes=10, channels=3, size=size, seed=k // CHUNK,
                                        n_train=min(CHUNK, n_train - k), n_test=0 if k else n_test)
        for part, images, labels, start in (("train", x, y, k), ("test", xt, yt, 0)):
            for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True), start):
                path = root / part / f"class_{label}" / f"{i:06d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image.transpose(1, 2, 0)).save(path)


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def train(dataset: str, out: Path, epochs: int = 1) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    result = measure([*DAU, "train", "--dataset", dataset, *MODEL, "--epochs", str(epochs),
                      "-o", str(out), "--json", "-q"])
    manifest = json.loads((out / "manifest.json").read_text())
    epoch_s = manifest["timings"]["epoch_seconds"][0]
    split = json.loads((out / "split.json").read_text())
    return {**result, "epoch_s": epoch_s, "images_per_s": split["counts"]["train"] / epoch_s,
            "normalisation": [manifest["model"]["mean"], manifest["model"]["std"]],
            "split": split["fingerprint"]}  # of the split's index sets


def unlearn_runs(root: Path, original: Path, method: str) -> dict[str, dict[str, Any]]:
    """Peak memory of the CLI on the stream, and of the API on the stream and in memory."""
    out = original.with_name(original.name + f"-{method}")
    shutil.rmtree(out, ignore_errors=True)
    runs = {"cli_stream": measure([*DAU, "unlearn", "--model", str(original), "--forget",
                                   "random:10%", "--method", method, "--epochs", "1",
                                   "-o", str(out), "--json", "-q"])}
    for how in ("stream", "memory"):
        runs[f"api_{how}"] = measure([sys.executable, "-c", API_UNLEARN, str(root),
                                      str(original), method, how])
    return runs


def bench_memory(sizes: tuple[int, int], image: int, method: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n in sizes:
        root = write_tree(SCRATCH / f"synthetic-{n}-{image}px",
                          lambda d, n=n: write_synthetic(d, n, 1000, image))
        original = SCRATCH / "runs" / f"{root.name}-original"
        results[str(n)] = {"tree": str(root), "train": train(f"imagefolder:{root}", original),
                           **unlearn_runs(root, original, method)}
    return results


def bench_heap(root: Path, passes: int = 6) -> dict[str, list[float]]:
    """RSS after each pass over ``root``'s training images, per (augment, allocator policy)."""
    results = {}
    for augment in ("0", "1"):
        for tune in ("0", "1"):
            out = subprocess.run([sys.executable, "-c", HEAP_PASSES, str(root), str(passes), augment,
                                  tune], check=True, capture_output=True, text=True).stdout
            policy = "dau policy" if tune == "1" else "glibc defaults"
            key = f"{'augmented' if augment == '1' else 'plain'}, {policy}"
            results[key] = json.loads(out.strip().splitlines()[-1])
    return results


def bench_throughput(name: str, repeats: int) -> dict[str, Any]:
    """One epoch in memory and streamed from the exported tree (same augmentation), alternated
    ``repeats`` times; the fastest epoch of each is kept (the others are in ``all``)."""
    from dau.data import load_dataset
    from dau.data.formats import write_image_folder

    info = load_dataset(name).info
    root = write_tree(SCRATCH / f"{name}-tree", lambda d: write_image_folder(d, load_dataset(name)))
    specs = {"memory": name, "stream": f"imagefolder:{root},hflip={str(info.hflip).lower()},"
                                      f"crop_padding={info.crop_padding}"}
    runs: dict[str, list[dict[str, Any]]] = {how: [] for how in specs}
    for _ in range(repeats):
        for how, spec in specs.items():
            runs[how].append(train(spec, SCRATCH / "runs" / f"{name}-{how}"))
    return {"tree": str(root), "specs": specs, "all": runs,
            **{how: min(rs, key=lambda r: r["epoch_s"]) for how, rs in runs.items()}}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import torch

    import dau

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                  if ln.startswith("Model name")), "?")
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "dau": dau.__version__, "python": sys.version.split()[0],
            "data_workers": os.environ.get("DAU_DATA_WORKERS", "default (cores - 1)")}


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([*lines[:1], "  ".join("-" * w for w in widths), *lines[1:]])


def _ratio_rows(label: str, a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row a field: a's value, b's, b/a."""
    fields = (("images_per_s", "images/s (epoch)", "{:.0f}"), ("epoch_s", "epoch s", "{:.1f}"),
              ("peak_rss_sum_mib", "peak sum RSS MiB", "{:.0f}"),
              ("peak_pss_sum_mib", "peak sum PSS MiB", "{:.0f}"),
              ("peak_single_mib", "peak largest process MiB", "{:.0f}"),
              ("wall_s", "wall s", "{:.1f}"), ("other_load_cores", "other users' load, cores", "{:.2f}"))
    return [(f"{label}{text}", fmt.format(a[key]), fmt.format(b[key]), f"{b[key] / a[key]:.2f}x"
             if a[key] else "-") for key, text, fmt in fields if key in a]


def report(results: dict[str, Any]) -> str:
    small, large = results["sizes"]
    mem = results["memory"]
    rows = [(f"{results['image_size']}px RGB, streamed unless said", f"{small:,} images",
             f"{large:,} images", f"ratio (data {large / small:.0f}x)")]
    for key, what in (("train", "dau train (CLI)"), ("cli_stream", "dau unlearn (CLI)"),
                      ("api_stream", "dau.unlearn (API)"), ("api_memory", "dau.unlearn, in memory (API)")):
        rows += _ratio_rows(f"{what}: ", mem[str(small)][key], mem[str(large)][key])
    thr = results["throughput"]
    rows2 = [(f"1 epoch on {results['throughput_dataset']} (best of {results['repeats']})",
              "in memory", "streamed", "stream/memory")]
    rows2 += _ratio_rows("", thr["memory"], thr["stream"])
    same = thr["memory"]["split"] == thr["stream"]["split"]
    rows2.append(("split fingerprint (index sets)", thr["memory"]["split"][:12],
                  thr["stream"]["split"][:12], "same" if same else "DIFFERENT"))
    rows2.append(("model normalisation mean, std", *(str(thr[how]["normalisation"])
                                                     for how in ("memory", "stream")), ""))
    for acc in ("train_acc", "val_acc", "test_acc"):
        a, b = thr["memory"]["stdout"][acc], thr["stream"]["stdout"][acc]
        rows2.append((acc, f"{a:.4f}", f"{b:.4f}", "equal" if a == b else f"diff {b - a:+.4f}"))
    rows3 = [("reading the small tree again (iterate_batches)", "RSS MiB, pass 1", "last pass",
              "last/first")]
    for what, rss in results["heap"].items():
        rows3.append((what, f"{rss[0]:.0f}", f"{rss[-1]:.0f}", f"{rss[-1] / rss[0]:.2f}x"))
    m = results["machine"]
    head = (f"machine: {m['cpu']}, {m['cores']} cores; python {m['python']}, torch {m['torch']}, "
            f"dau {m['dau']}; DAU_DATA_WORKERS {m['data_workers']}; OMP_NUM_THREADS "
            f"{results['threads']}\nmodel: {results['model']}; "
            f"train --epochs 1; unlearn {results['unlearn']}")
    return "\n\n".join([head, table(rows), table(rows2), table(rows3)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 vs 10,000 images of 32×32, throughput on digits.")
    parser.add_argument("--method", default="ga", help="dau unlearn --method, 1 epoch (default ga: "
                        "over the forget set only, the cheapest; ft passes over the retain set).")
    parser.add_argument("--repeats", type=int, help="Alternated in-memory/streamed epochs of "
                        "the throughput claim (default: 2, --quick 1).")
    parser.add_argument("--threads", default="1",
                        help="OMP_NUM_THREADS of every run (torch's CPU threads; default 1: on a "
                             "shared 2-core machine more threads than free cores stall).")
    parser.add_argument("--json", type=Path, help="Write the raw results here.")
    args = parser.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 2)
    os.environ["OMP_NUM_THREADS"] = args.threads  # before torch is imported, here and in the runs
    sizes, image, data = ((2_000, 10_000), 32, "digits") if args.quick \
        else ((10_000, 50_000), 64, "fashion-mnist")
    results = {"machine": machine(), "sizes": sizes, "image_size": image,
               "unlearn": f"--method {args.method} --epochs 1 --forget random:10%",
               "model": " ".join(MODEL), "threads": args.threads, "throughput_dataset": data,
               "repeats": args.repeats}
    results["memory"] = bench_memory(sizes, image, args.method)
    results["throughput"] = bench_throughput(data, args.repeats)
    results["heap"] = bench_heap(Path(results["memory"][str(sizes[0])]["tree"]))
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
