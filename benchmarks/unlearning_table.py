#!/usr/bin/env python3
"""Reproduce the unlearning table: original, retrain, DAU and FT, dense and sparse,
random and class-wise forgetting, with one command.

::

    python benchmarks/unlearning_table.py                 # Fashion-MNIST, everything
    python benchmarks/unlearning_table.py --stage train --jobs 8 --device cuda
    python benchmarks/unlearning_table.py --stage eval --jobs 2

What it runs (each a ``dau`` command; its run directory is ``<root>/<job>``):

==========================  =================================================
``original``                ``dau train`` on the whole training split
``retrain-random``          ``dau train --forget random:P% --exclude-forget``
``retrain-class``           ``dau train --class K --exclude-forget``
``sparse-<run>``            ``dau prune --model <run> --ratio R`` (OMP, rewind,
                            retrain with the mask) of each of the three above
``<m>-<mode>``              ``dau unlearn --model original --method m``
``sparse-<m>-<mode>``       ``dau unlearn --mask sparse-original --method m``
==========================  =================================================

for ``m`` in dau, ft and ``mode`` in random, class. The sparse references are
the retrain runs pruned the same way (their masks never saw the forget set).
``--variant NAME=ARGS`` adds more unlearning runs of the dense original (for
example ``--variant dau-random-lr0.02="--forget random:10% --lr 0.02"``) to
the random or class table, by the forget option in ARGS; it starts after the
method's own run of that mode, whose cached pretrained attacker it reuses.

Jobs run as soon as the runs they need are complete, ``--jobs`` at a time
(several fit on one GPU: the models are small; on the CPU each job gets its share
of the cores, ``--threads``). A job whose run directory is already complete is
skipped, so an interrupted reproduction resumes: an interrupted training or
pruning run continues from its last epoch (``dau train --resume``), an
interrupted unlearning run from its last saved state (``dau unlearn --resume``),
and a run that saved none is kept under a new name and started afresh. With
``--deadline S`` no job starts after S seconds and the running ones are stopped
at S (their run directories say "running"); the eval stage then reports what
exists.

Each (run, reference) pair is evaluated once (``dau eval``'s metrics, faithful
SVC MIA unless ``--max-mia-samples``) in a worker process, ``--eval-jobs`` at a
time, as soon as both runs are complete, so evaluation overlaps training; the
results are cached in ``<root>/eval/pairs/``. The stage then prints the four
tables (the gap to the table's retrain run, and Avg.Gap) and writes
``<root>/eval/<table>.json``. RTE is each run's own wall time as recorded in its
manifest: runs that shared a machine with other jobs are slower than they would
be alone, retrain and unlearning runs alike. ``<root>/train-status.json`` says
which jobs finished, failed or never started.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

from dau.checkpoint import STATE, atomic_write_json  # noqa: E402 (after the path is set)


@dataclass
class Job:
    name: str
    args: list[str]
    needs: list[str] = field(default_factory=list)
    command: list[str] | None = None  # a plain command instead of ``dau ARGS``


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=Path("runs/table-fmnist"),
                   help="Folder of the run directories (default: runs/table-fmnist).")
    p.add_argument("--stage", choices=("all", "train", "eval"), default="all")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--train-args", default="--schedule cosine --no-augment --rewind-epoch 2",
                   help="More `dau train` options for the original and retrain runs.")
    p.add_argument("--random", default="10%", help="Random forget set size (N or P%%).")
    p.add_argument("--klass", "--class", dest="klass", type=int, default=3,
                   help="The class forgotten in the class-wise table.")
    p.add_argument("--ratio", type=float, default=0.95, help="Pruning ratio of the sparse rows.")
    p.add_argument("--methods", default="dau,ft", help="Unlearning methods (comma-separated).")
    p.add_argument("--unlearn-args", default="", help="More `dau unlearn` options for every method.")
    p.add_argument("--dau-args", default="--attacker-iters 300",
                   help="More `dau unlearn` options for DAU only (default: 300 attacker "
                   "pretraining iterations; on Fashion-MNIST its loss plateaus by then).")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS",
                   help="An extra unlearning run of the dense original.")
    p.add_argument("--no-sparse", action="store_true", help="Dense rows only.")
    p.add_argument("--build-ops", action="store_true",
                   help="Build the op library (csrc/build_ops.py) as a first job, needed by the "
                   "sparse rows, in a source checkout that was not installed.")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="Training and unlearning jobs run at once.")
    p.add_argument("--eval-jobs", type=positive_int, default=1,
                   help="Evaluations run at once (each as soon as its runs are complete).")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of each job and evaluation (default on the CPU, unless "
                   "OMP_NUM_THREADS is set: the cores divided among --jobs, and among --eval-jobs).")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--deadline", type=float, default=None,
                   help="Seconds after which the train stage stops starting and running jobs.")
    p.add_argument("--max-mia-samples", type=int, default=None,
                   help="Subsample the MIA shadow sets (default: all rows, as the reference).")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


def forget_of(mode: str, args: argparse.Namespace) -> list[str]:
    return ["--forget", f"random:{args.random}"] if mode == "random" else ["--class", str(args.klass)]


def plan_jobs(args: argparse.Namespace) -> list[Job]:
    common = ["--device", args.device, "--seed", str(args.seed)]
    if args.data_dir:
        common += ["--data-dir", args.data_dir]
    train = ["train", "--dataset", args.dataset, "--arch", args.arch, "--width", str(args.width),
             "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr",
             str(args.lr), *shlex.split(args.train_args), *common]
    jobs = [Job("original", train)]
    for mode in ("random", "class"):
        jobs.append(Job(f"retrain-{mode}", [*train, *forget_of(mode, args), "--exclude-forget"]))
    sparse = [] if args.no_sparse else ["sparse-"]
    ops = []
    if args.build_ops:
        ops = ["build-ops"]
        jobs.insert(0, Job("build-ops", [], command=[
            sys.executable, str(ROOT / "csrc" / "build_ops.py"), "--out-dir",
            str(ROOT / "python" / "dau")]))
    for prefix in sparse:
        for base in ("original", "retrain-random", "retrain-class"):
            jobs.append(Job(f"{prefix}{base}", ["prune", "--model", base, "--ratio",
                                                str(args.ratio), "--device", args.device],
                            needs=[base, *ops]))
    unlearn = ["unlearn", *shlex.split(args.unlearn_args), "--device", args.device]
    if args.data_dir:
        unlearn += ["--data-dir", args.data_dir]
    for prefix in ["", *sparse]:
        source = ["--model", "original"] if not prefix else ["--mask", "sparse-original"]
        for method in args.methods.split(","):
            extra = shlex.split(args.dau_args) if method == "dau" else []
            for mode in ("random", "class"):
                jobs.append(Job(f"{prefix}{method}-{mode}",
                                [*unlearn, *source, "--method", method, *forget_of(mode, args),
                                 *extra], needs=[source[1], *ops]))
    for variant in args.variant:
        name, _, rest = variant.partition("=")
        words = shlex.split(rest)
        method = words[words.index("--method") + 1] if "--method" in words[:-1] else "dau"
        mode = "random" if any(w.startswith("random:") for w in words) else "class"
        # after the method's own run of that mode: it reuses the attacker that run cached
        first = f"{method}-{mode}"
        needs = ["original", *([first] if first in {job.name for job in jobs} else [])]
        jobs.append(Job(name, [*unlearn, "--model", "original", *words], needs=[*needs, *ops]))
    return jobs


def manifest_field(run: Path, key: str) -> str | None:
    """A top-level field of a run's manifest as text; None while there is no manifest."""
    try:
        value = json.loads((run / "manifest.json").read_text()).get(key)
    except (OSError, ValueError):
        return None
    return None if value is None else str(value)


def manifest_status(run: Path) -> str | None:
    return manifest_field(run, "status")


def resolve_paths(argv: list[str], root: Path, names: set[str]) -> list[str]:
    """Job names given as the value of --model/--mask become run directories."""
    out = list(argv)
    for i, value in enumerate(out[:-1]):
        if value in ("--model", "--mask") and out[i + 1] in names:
            out[i + 1] = str(root / out[i + 1])
    return out


def job_argv(job: Job, args: argparse.Namespace, names: set[str]) -> list[str]:
    """The command that runs ``job``. A run interrupted after it saved its resume state
    (training and pruning: after an epoch; unlearning: every 10 minutes and epoch)
    continues where it stopped; any other unfinished run directory is kept under a new
    name and the job starts afresh."""
    if job.command is not None:
        return job.command
    run: Path = args.root / job.name
    dau = [sys.executable, "-m", "dau"]
    if run.exists():
        if (job.args[0] in ("train", "prune", "unlearn") and (run / STATE).is_file()
                and manifest_status(run) in ("running", "interrupted")):
            command = "unlearn" if job.args[0] == "unlearn" else "train"
            return [*dau, command, "--resume", str(run), "--device", args.device, "--quiet"]
        run.rename(args.root / f"{job.name}.interrupted-{int(time.time())}")
    return [*dau, *resolve_paths(job.args, args.root, names), "--out", str(run), "--quiet"]


def cpu_threads(args: argparse.Namespace, workers: int) -> int | None:
    """Torch threads for each of ``workers`` processes sharing the CPU, so that parallel
    jobs do not oversubscribe the cores; None (torch's own default) on a GPU run, or
    where OMP_NUM_THREADS is set."""
    if args.threads is not None:
        return args.threads
    if "OMP_NUM_THREADS" in os.environ:
        return None
    if args.device == "auto":
        import torch

        on_cpu = not torch.cuda.is_available()
    else:
        on_cpu = args.device == "cpu"
    return max(1, (os.cpu_count() or 1) // workers) if on_cpu else None


def _init_worker(threads: int | None) -> None:
    """An evaluation worker: the dau command's allocator policy, its share of the cores."""
    from dau.allocator import tune

    tune()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


class Evaluations:
    """Evaluations of (run, reference) pairs in worker processes, each started as soon as
    both run directories are complete, cached in ``<root>/eval/pairs/``."""

    def __init__(self, args: argparse.Namespace, jobs: list[Job]) -> None:
        self.args = args
        self.root: Path = args.root
        self.layout = tables(args, jobs)
        self.kwargs = {"device": args.device, "max_mia_samples": args.max_mia_samples,
                       "data_dir": args.data_dir, "progress": False}
        self.pairs: list[tuple[str, str | None]] = []
        for table in self.layout.values():
            ref = str(table["reference"])
            self.pairs += [(ref, None), *((str(row), ref) for row in table["rows"])]
        self.pairs = list(dict.fromkeys(self.pairs))
        self.futures: dict[tuple[str, str | None], Future[dict[str, object]]] = {}
        self.pool: ProcessPoolExecutor | None = None
        (self.root / "eval" / "pairs").mkdir(parents=True, exist_ok=True)

    def _cache(self, pair: tuple[str, str | None]) -> Path:
        run, ref = pair
        return self.root / "eval" / "pairs" / f"{run}__{ref or 'self'}.json"

    def _stamp(self, pair: tuple[str, str | None]) -> list[object]:
        """What a cached result depends on: the runs' creation times and the options."""
        return [manifest_field(self.root / name, "created") for name in pair if name] + [
            self.kwargs["max_mia_samples"]]

    def cached(self, pair: tuple[str, str | None]) -> dict[str, object] | None:
        try:
            entry = json.loads(self._cache(pair).read_text())
        except (OSError, ValueError):
            return None
        return entry["result"] if entry.get("stamp") == self._stamp(pair) else None

    def submit_ready(self) -> None:
        """Start every evaluation whose runs are complete and not started or cached."""
        for pair in self.pairs:
            if pair in self.futures or self.cached(pair) is not None:
                continue
            if all(manifest_status(self.root / name) == "complete" for name in pair if name):
                if self.pool is None:
                    self.pool = ProcessPoolExecutor(
                        max_workers=self.args.eval_jobs,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_init_worker,
                        initargs=(cpu_threads(self.args, self.args.eval_jobs),))
                run, ref = pair
                task = (str(self.root / run), str(self.root / ref) if ref else None, self.kwargs)
                self.futures[pair] = self.pool.submit(_evaluate, task)
                print(f"evaluating {run}" + (f" against {ref}" if ref else ""), flush=True)

    def collect(self) -> dict[tuple[str, str | None], dict[str, object]]:
        """Wait for the started evaluations; every result available, by pair."""
        results = {}
        for pair in self.pairs:
            future = self.futures.get(pair)
            if future is not None:
                try:
                    result = future.result()
                except Exception as exc:
                    print(f"evaluation of {pair[0]} failed: {exc}", flush=True)
                    continue
                atomic_write_json(self._cache(pair), {"stamp": self._stamp(pair), "result": result})
                results[pair] = result
            elif (hit := self.cached(pair)) is not None:
                results[pair] = hit
        if self.pool is not None:
            self.pool.shutdown()
        return results


def run_jobs(jobs: list[Job], args: argparse.Namespace, evals: Evaluations | None) -> bool:
    """Run the jobs (and, with ``evals``, start each evaluation once its runs exist)."""
    root: Path = args.root
    (root / "logs").mkdir(parents=True, exist_ok=True)
    names = {job.name for job in jobs}
    run_dirs = {job.name for job in jobs if job.command is None}
    done = {name for name in run_dirs if manifest_status(root / name) == "complete"}
    failed: set[str] = set()
    pending = [job for job in jobs if job.name not in done]
    running: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    threads = cpu_threads(args, args.jobs)
    start = time.monotonic()
    for name in sorted(done):
        print(f"[{0:7.1f}s] {name}: already complete", flush=True)
    while pending or running:
        elapsed = time.monotonic() - start
        for name, (proc, began) in list(running.items()):
            if proc.poll() is None:
                if args.deadline is not None and elapsed > args.deadline:
                    proc.terminate()
                    proc.wait()
                    print(f"[{elapsed:7.1f}s] {name}: stopped at the deadline", flush=True)
                    failed.add(name)
                    del running[name]
                continue
            del running[name]
            ok = proc.returncode == 0 and (name not in run_dirs
                                           or manifest_status(root / name) == "complete")
            (done if ok else failed).add(name)
            print(f"[{elapsed:7.1f}s] {name}: {'done' if ok else f'FAILED (exit {proc.returncode})'}"
                  f" in {elapsed - began:.1f}s", flush=True)
            if ok and evals is not None:
                evals.submit_ready()
        blocked = [job for job in pending if set(job.needs) & failed]
        for job in blocked:
            print(f"[{elapsed:7.1f}s] {job.name}: skipped, needs {sorted(set(job.needs) & failed)}",
                  flush=True)
            failed.add(job.name)
            pending.remove(job)
        past_deadline = args.deadline is not None and elapsed > args.deadline
        for job in list(pending):
            if len(running) >= args.jobs or past_deadline:
                break
            if not set(job.needs) <= done:
                continue
            pending.remove(job)
            argv = job_argv(job, args, names)
            log = (root / "logs" / f"{job.name}.log").open("a")
            log.write(shlex.join(argv) + "\n")
            log.flush()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "python"), os.environ.get("PYTHONPATH", "")])}
            if threads is not None:
                env["OMP_NUM_THREADS"] = str(threads)
            running[job.name] = (subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                  env=env), elapsed)
            print(f"[{elapsed:7.1f}s] {job.name}: started", flush=True)
        if past_deadline and not running:
            for job in pending:
                print(f"[{elapsed:7.1f}s] {job.name}: not started (deadline)", flush=True)
            break
        time.sleep(0.5)
    atomic_write_json(root / "train-status.json", {
        "done": sorted(done), "failed": sorted(failed), "not_started": [j.name for j in pending],
        "seconds": time.monotonic() - start})
    return not failed and not pending


def tables(args: argparse.Namespace, jobs: list[Job]) -> dict[str, dict[str, list[str] | str]]:
    names = [job.name for job in jobs]
    out: dict[str, dict[str, list[str] | str]] = {}
    for prefix in ["", *([] if args.no_sparse else ["sparse-"])]:
        for mode in ("random", "class"):
            flag = f"random:{args.random}" if mode == "random" else f"--class {args.klass}"
            rows = [f"{prefix}original"]
            for method in args.methods.split(","):
                rows.append(f"{prefix}{method}-{mode}")
            if not prefix:
                rows += [v.partition("=")[0] for v in args.variant
                         if (mode == "random") == ("random:" in v.partition("=")[2])]
            ref = f"{prefix}retrain-{mode}"
            title = f"{'sparse ' if prefix else 'dense '}{mode} ({flag})"
            out[f"{prefix or 'dense-'}{mode}"] = {"title": title,
                                                 "rows": [r for r in rows if r in names],
                                                 "reference": ref}
    return out


def _evaluate(task: tuple[str, str | None, dict[str, object]]) -> dict[str, object]:
    from dau.checkpoint import load_run
    from dau.eval.runs import evaluate_run

    run, reference, kwargs = task
    ref = load_run(reference) if reference else None
    return evaluate_run(load_run(run), reference=ref, **kwargs)  # type: ignore[arg-type]


def print_tables(evals: Evaluations) -> bool:
    """Print the tables from the evaluations; write ``<root>/eval/<table>.json``."""
    from dau.eval.report import format_table, gap

    results = evals.collect()
    complete = True
    for key, table in evals.layout.items():
        ref = str(table["reference"])
        if (ref, None) not in results:
            print(f"\n## {table['title']}: the reference {ref} is missing", flush=True)
            complete = False
            continue
        ref_result = results[(ref, None)]
        rows = []
        for row in table["rows"]:
            if (row, ref) not in results:
                print(f"(missing run: {row})")
                complete = False
                continue
            result = dict(results[(row, ref)])
            result["gap"] = gap(result, ref_result)
            result["name"] = row
            rows.append((row, result))
        rows.append((ref, {**ref_result, "name": ref}))
        print(f"\n## {table['title']}\n{format_table(rows, reference=ref)}", flush=True)
        atomic_write_json(evals.root / "eval" / f"{key}.json",
                     {"title": table["title"], "reference": ref, "rows": dict(rows)})
    return complete


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    jobs = plan_jobs(args)
    ok = True
    evals = Evaluations(args, jobs) if args.stage in ("all", "eval") else None
    if args.stage in ("all", "train"):
        ok = run_jobs(jobs, args, evals) and ok
    if evals is not None:
        evals.submit_ready()
        ok = print_tables(evals) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
