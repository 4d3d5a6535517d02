"""``dau unlearn``: make an original model forget a class or a set of samples."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from dau.cli.options import FORGET_HELP, common_options, emit_json, kernels_option, request_options
from dau.config import UnlearnConfig

_D = UnlearnConfig  # the defaults of the options below are the config's

__all__ = ["unlearn"]

# The baselines' own settings (default: the method's, dau.methods.defaults; docs/methods/)
_BASELINE_OPTIONS = [
    ("--forget-batch-size", int, "neggrad+ and scrub: batch size of the forget batches "
     "(default: scrub's 32, else --batch-size)."),
    ("--l1-alpha", float, "l1-sparse: weight of the ℓ1 penalty at the first step, decaying "
     "linearly to 0 (default 5e-4)."),
    ("--neggrad-alpha", float, "neggrad+: α in α·CE(retain) − (1 − α)·CE(forget) (default 0.95)."),
    ("--salun-fraction", float, "salun: fraction of the weights (largest forget-loss gradients) "
     "the saliency mask lets change (default 0.5)."),
    ("--scrub-msteps", int, "scrub: epochs that begin with a max pass over the forget set "
     "(default 2)."),
    ("--scrub-temperature", float, "scrub: distillation temperature (default 4)."),
    ("--scrub-ce-weight", float, "scrub: γ, weight of the retain cross-entropy (default 0.99)."),
    ("--scrub-kl-weight", float, "scrub: α, weight of the retain KL to the teacher "
     "(default 0.001)."),
    ("--ssd-alpha", float, "ssd: selects parameters whose forget importance exceeds α times "
     "their importance on the training set (default 10)."),
    ("--ssd-lambda", float, "ssd: dampens a selected parameter by min(λ·full/forget, 1) "
     "(default 1)."),
    ("--bs-bound", float, "bs: the FGSM step on the input, in pixels of [0, 1] (default 0.1)."),
    ("--amun-eps", float, "amun: first L2 budget of the adversarial search, doubled while a "
     "sample is still classified right (default 0.01)."),
    ("--amun-steps", int, "amun: PGD steps per budget (default 50)."),
    ("--amun-rounds", int, "amun: budgets tried at most (default 12)."),
]


def baseline_options(func: Any) -> Any:
    for flag, kind, text in reversed(_BASELINE_OPTIONS):
        func = click.option(flag, type=kind, default=None, help=text)(func)
    return func


@click.command()
@click.option("--dataset", default=None,
              help="Dataset of the original model to look up under --runs-dir.")
@click.option("--arch", default=None, help="Architecture of the original model to look up.")
@click.option("--model", type=click.Path(file_okay=False, exists=True), default=None,
              help="The original model's run directory (default: the newest one for --dataset).")
@click.option("--mask", type=click.Path(exists=True), default=None,
              help="A pruned run (from dau prune) to unlearn, or a masks file (ours, or a "
              "reference weight_orig/weight_mask checkpoint) to apply to the original model.")
@click.option("--forget", default=None, help=FORGET_HELP)
@request_options
@click.option("--class", "klass", type=int, default=None, help="Short for --forget class:K.")
@click.option("--method", default="dau", show_default=True,
              help="dau, or a baseline: retrain, ft, ga, rl, salun, l1-sparse, neggrad+, scrub, "
              "ssd, bs, amun (docs/methods/), or a method registered with "
              "dau.register_method.")
@click.option("--lr", type=float, default=None,
              help="Defender learning rate (default: the method's for the dataset and mode).")
@click.option("--epochs", type=int, default=None, help="Passes over the retain set (default: per dataset).")
@click.option("--schedule", type=click.Choice(["constant", "cosine", "multistep"]), default=None,
              help="Learning rate over the run: constant (the reference), or cosine from --lr "
              "(--stop-unlearn-lr after the stop) to 0 at the end (default: per dataset and "
              "mode, else constant). Retrain follows dau train's schedules (multistep, cosine "
              "or constant per epoch; default: the original's).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the batch streams.")
@click.option("--stop-iter", type=int, default=None,
              help="Class-wise DAU: step after which β = 0 and the adversarial branch stops.")
@click.option("--stop-unlearn-lr", "stop_lr", type=float, default=None,
              help="Class-wise DAU: learning rate after --stop-iter.")
@click.option("--stop-rule", type=click.Choice(["fixed", "measured"]), default=None,
              help="DAU: when the adversarial branch and the run stop. fixed: at --stop-iter "
              "(class-wise) and after --epochs (the reference); measured: the adversarial "
              "branch stops once the forget batches' accuracy is at its target (class-wise: "
              "0; random: the validation batches') and the run "
              "once the retain batches' accuracy is back at the original's, each over "
              "--stop-window steps within --stop-tolerance; --epochs is then a cap "
              "(default: per dataset and mode, else fixed).")
@click.option("--stop-window", type=int, default=_D.stop_window, show_default=True,
              help="--stop-rule measured: steps each running mean is taken over.")
@click.option("--stop-tolerance", type=float, default=_D.stop_tolerance, show_default=True,
              help="--stop-rule measured: how close to its target an accuracy must come "
              "(a fraction: 0.02 is 2 points).")
@click.option("--attacker", type=click.Path(exists=True), default=None,
              help="A pretrained attacker (.safetensors, or a run directory holding one).")
@click.option("--attacker-iters", "attacker_pretrain_iters", type=int,
              default=_D.attacker_pretrain_iters,
              show_default=True, help="Attacker pretraining iterations.")
@click.option("--noise-copies", type=int, default=_D.noise_copies, show_default=True,
              help="Noisy copies per sample for the sensitivity feature.")
@click.option("--sigma", type=float, default=_D.sigma, show_default=True, help="Noise scale.")
@click.option("--adv-weight", type=float, default=None,
              help="DAU: weight of the attacker cross-entropy (reversed labels) in the "
              "defender's loss (default: per dataset and mode, else the reference's 0.9).")
@click.option("--bt-weight", type=float, default=_D.bt_weight, show_default=True,
              help="DAU: weight of the forget/validation cross-correlation term.")
@click.option("--offdiag-weight", type=float, default=_D.offdiag_weight, show_default=True,
              help="DAU: weight of the cross-correlation matrix's off-diagonal entries.")
@click.option("--std-eps", type=float, default=_D.std_eps, show_default=True,
              help="DAU: epsilon of the features' standardisation.")
@click.option("--attacker-arch", default=_D.attacker_arch, show_default=True,
              help="DAU: attacker architecture (registry name).")
@click.option("--attacker-lr", type=float, default=_D.attacker_lr, show_default=True,
              help="DAU: the attacker's Adam learning rate.")
@click.option("--attacker-steps", type=int, default=_D.attacker_steps, show_default=True,
              help="DAU: attacker updates per defender update.")
@click.option("--momentum", type=float, default=_D.momentum, show_default=True,
              help="Defender SGD momentum.")
@click.option("--weight-decay", type=float, default=_D.weight_decay, show_default=True,
              help="Defender weight decay.")
@click.option("--reference-compat", is_flag=True,
              help="Reproduce the reference code where its bug fixes change results "
              "(BatchNorm statistics updated by forget batches, no epsilon, …).")
@click.option("--sensitivity", type=click.Choice(["fd", "jvp"]), default=_D.sensitivity,
              show_default=True,
              help="DAU's input-sensitivity feature: finite differences over the noisy copies "
              "(run in IEEE float32, TF32 off), or the same quantity as a forward-mode "
              "Jacobian-vector product (meaningful under TF32 too).")
@click.option("--adversarial-bn", type=click.Choice(["batch", "running"]),
              default=_D.adversarial_bn, show_default=True,
              help="How the defender's BatchNorm normalises the forget and validation passes of "
              "DAU (and attacker pretraining): each batch's own statistics, as the reference "
              "(a class-wise forget batch holds one class), or the running statistics the "
              "deployed model uses.")
@click.option("--adversarial-targets", type=click.Choice(["both", "forget"]), default=None,
              help="Which passes DAU's defender trains through with its adversarial and "
              "cross-correlation losses: the forget and the validation passes, as the reference "
              "(the validation set is then trained on, and VA is not held out), or the forget "
              "passes only (forget samples are pushed to look like validation ones, which the "
              "defender leaves alone). Default: per dataset and mode, else both.")
@click.option("--adversarial-every", type=int, default=None,
              help="DAU: run the adversarial branch (the attacker update and the defender's "
              "adversarial and cross-correlation terms) on every N-th step only; the steps "
              "between fine-tune on their retain batch alone, at a small fraction of the cost "
              "(default: per dataset and mode, else 1).")
@baseline_options
@kernels_option("fused: dau's compiled ops (noisy copies, sensitivity features, "
                "cross-correlation loss, masked SGD); reference: their pure-PyTorch versions "
                "(same numbers within float tolerance).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Run directory to create (default: a new one under --runs-dir).")
@click.option("--checkpoint-every", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="MINUTES",
              help="Save the state --resume goes on from this often (and after every epoch).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None,
              help="Continue an interrupted unlearning run in place, with its own settings, "
              "from its last saved state, to the result it would have had uninterrupted "
              "(--device of the same type, --data-dir, --checkpoint-every and the output "
              "options may be given).")
@common_options
def unlearn(**opts: Any) -> None:
    """Unlearn a forget set from an original model; writes a new run directory."""
    from dau.cli import configure_logging
    from dau.data.splits import parse_forget_option
    from dau.methods.run import resume
    from dau.methods.run import unlearn as run_unlearning

    configure_logging(bool(opts["quiet"]), int(opts["verbose"]))
    seconds = 60.0 * float(opts["checkpoint_every"])
    if opts["resume"] is not None:
        _check_resume_options()
        run = resume(opts["resume"], device=None if opts["device"] == "auto" else opts["device"],
                     data_dir=opts["data_dir"], progress=not opts["quiet"],
                     checkpoint_seconds=seconds)
    else:
        forget = parse_forget_option(opts["forget"], opts["klass"])
        if forget == "none":
            raise click.UsageError("say what to forget: --forget SPEC or --class K")
        config = UnlearnConfig(**{f.name: opts[f.name] for f in dataclasses.fields(UnlearnConfig)})
        run = run_unlearning(config, forget=forget, model=opts["model"], dataset=opts["dataset"],
                             arch=opts["arch"], runs_dir=opts["runs_dir"], out=opts["out"],
                             attacker=opts["attacker"], mask=opts["mask"],
                             data_dir=opts["data_dir"], progress=not opts["quiet"],
                             metadata=opts["metadata"], id_column=opts["id_column"],
                             checkpoint_seconds=seconds)
    summary = run.manifest.get("summary", {})
    if opts["as_json"]:
        emit_json({"run": str(run.path), "parent": run.manifest["parent"],
                   "seconds": run.manifest["timings"]["unlearn_seconds"], "summary": summary,
                   "request": run.manifest["split"].get("request")})
    else:
        attacker = summary.get("attacker", {}).get("source")
        if attacker:
            click.echo(f"attacker: {attacker}", err=True)
        click.echo(f"run: {run.path}", err=True)


# what --resume may be given with: where and how it runs, not what it computes
_RESUME_OPTIONS = {"resume", "device", "data_dir", "checkpoint_every", "quiet", "verbose",
                   "as_json"}


def _check_resume_options() -> None:
    ctx = click.get_current_context()
    given = [p for p in ctx.command.params
             if p.name and p.name not in _RESUME_OPTIONS
             and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        names = ", ".join(p.opts[-1] if p.opts[-1].startswith("--") else p.opts[0] for p in given)
        raise click.UsageError(f"--resume goes on with the run's own settings; leave out {names} "
                               "(only --device, --data-dir, --checkpoint-every and the output "
                               "options may be given)")
