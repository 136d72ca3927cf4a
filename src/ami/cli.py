"""The `ami` command: parse options into a config, call the library function, print the result.

    ami collect | train | eval | finetune | demo  [--help] [options]
    ami train-policy | train-critic | train-guardrail  (heads on a run's frozen encoder)
    ami train-high  (H-JEPA: the slower high level, for `ami eval --actor hierarchical`)
    ami probe | surprise  (what a run's world model understood of its world's physics)
    ami bench efficiency  (JEPA against a pixel-predicting world model: compute, energy, success)
    ami pretrain | probe-features  (I-JEPA / V-JEPA perception, and linear probes on it)

Add --debug anywhere to see a traceback instead of a one-line error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tyro

from ami.config import (
    CollectConfig,
    CriticConfig,
    DemoConfig,
    EfficiencyConfig,
    EvalConfig,
    FeatureProbeConfig,
    FinetuneConfig,
    GuardrailConfig,
    HighLevelConfig,
    PolicyConfig,
    PretrainConfig,
    ProbeConfig,
    SurpriseConfig,
    TrainConfig,
)
from ami.errors import AmiError


def _collect(cfg: CollectConfig) -> None:
    from ami.data.collect import collect
    from ami.data.dataset import count_episodes
    path = collect(cfg)
    print(f"{path} holds {count_episodes(path)} episodes of {cfg.steps} steps")


def _train(cfg: TrainConfig) -> None:
    from ami.demo import link_latest
    from ami.distributed import is_main_process
    from ami.train import train
    run = train(cfg)
    if is_main_process():  # under torchrun, every rank runs this
        link_latest(run)
        print(f"run directory: {run}")


def _eval(cfg: EvalConfig) -> None:
    from ami.evaluate.planning import evaluate
    r = evaluate(cfg)
    shown = {k: r[k] for k in ("episodes", "success_rate", "mean_steps", "ms_per_plan_median",
                               "seconds_per_episode")}
    print(json.dumps(shown, indent=2))
    print(f"wrote {cfg.run}/eval.json")


def _train_policy(cfg: PolicyConfig) -> None:
    from ami.heads import train_policy_run
    print(f"wrote {train_policy_run(cfg)}")


def _train_critic(cfg: CriticConfig) -> None:
    from ami.heads import train_critic_run
    print(f"wrote {train_critic_run(cfg)}")


def _train_high(cfg: HighLevelConfig) -> None:
    from ami.hierarchy import train_high
    print(f"wrote {train_high(cfg)}")


def _train_guardrail(cfg: GuardrailConfig) -> None:
    from ami.heads import train_guardrail_run
    print(f"wrote {train_guardrail_run(cfg)}")


def _probe(cfg: ProbeConfig) -> None:
    from ami.evaluate.probes import probe
    r = probe(cfg)
    p = r["protocol"]
    window = "1 frame" if p["frames"] == 1 else \
        f"{p['frames']} frames, {p['frameskip']} steps apart"
    print(f"probes on {p['samples']['test']} windows ({window}) of {p['episodes']['test']} "
          f"held-out episodes")
    print(f"  {'variable':<12} {'linear r':>9} {'R²':>7} {'MLP r':>9} {'R²':>7}")
    for name in r["variables"]:
        lin, mlp = r["linear"][name], r["mlp"][name]
        print(f"  {name:<12} {lin['r']:>9.3f} {lin['r2']:>7.3f} {mlp['r']:>9.3f} "
              f"{mlp['r2']:>7.3f}")
    print(f"wrote {cfg.run}/probe.json")


def _surprise(cfg: SurpriseConfig) -> None:
    from ami.evaluate.surprise import surprise
    r = surprise(cfg)
    print(f"violation of expectation, {r['world']}: {cfg.pairs} pairs per category "
          f"(score: max surprise over the clip; mean in surprise.json)")
    print(f"  {'category':<14} {'AUROC':>6} {'rel. acc.':>10}")
    for name, c in r["categories"].items():
        note = "  (control: possible)" if c["control"] else ""
        print(f"  {name:<14} {c['auroc_max']:>6.3f} {100 * c['relative_accuracy_max']:>9.1f}%"
              f"{note}")
    print(f"wrote {cfg.run}/surprise.json" + (f" and {cfg.run}/surprise.png" if cfg.plot else ""))


def _pretrain(cfg: PretrainConfig) -> None:
    from ami.perception.pretrain import pretrain
    run = pretrain(cfg)
    print(f"pretrained encoder: {run}/encoder.safetensors")


def _probe_features(cfg: FeatureProbeConfig) -> None:
    from ami.evaluate.features import probe_features, result_path
    r = probe_features(cfg)
    p = r["protocol"]
    print(f"linear probes ({r['task']}, {cfg.pool} features) on {p['samples']['test']} held-out "
          f"samples, trained on {p['samples']['train']} ({p['split']})")
    if r["task"] == "classify":
        print(f"  {'features':<16} {'accuracy':>9}")
        for name, s in r["results"].items():
            print(f"  {name:<16} {100 * s['accuracy']:>8.1f}%")
    else:
        print(f"  {'features':<16} {'target':<10} {'r':>7} {'R²':>7}")
        for name, s in r["results"].items():
            for i, target in enumerate(r["targets"]):
                print(f"  {name:<16} {target:<10} {s['r'][i]:>7.3f} {s['r2'][i]:>7.3f}")
    print(f"wrote {result_path(cfg)}")


def _finetune(cfg: FinetuneConfig) -> None:
    from ami.finetune import finetune
    r = finetune(cfg)
    print(f"{r['agent_episodes']} agent episodes, {r['windows']} training windows; "
          f"latent prediction error before -> after:")
    for name, b in r["prediction_error_before"].items():
        if b is not None:
            print(f"  {name:<24} {b:.4f} -> {r['prediction_error_after'][name]:.4f}")
    print(f"fine-tuned run: {r['run']}")


def _demo(cfg: DemoConfig) -> None:
    from ami.demo import demo
    s = demo(cfg)
    rows = [
        ("data", f"{s['episodes_collected']} episodes, {s['frames']} frames "
                 f"({s['collect_seconds']:.0f} s to collect)"),
        ("training", f"{s['train_steps']} steps in {s['train_seconds']:.0f} s"),
        ("parameters", f"{s['parameters']:,}"),
        ("success rate", f"{100 * s['success_rate']:.0f} % of {s['eval_episodes']} episodes"),
        ("ms per plan", f"{s['ms_per_plan_median']:.1f} (median)"),
        ("s per episode", f"{s['seconds_per_episode']:.2f}"),
        ("run", s["run"]),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nami demo: Two-Rooms, from pixels to plans")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def _bench(cfg: EfficiencyConfig) -> None:
    from ami.evaluate.efficiency import efficiency, markdown
    print(markdown(efficiency(cfg)))
    print(f"wrote {cfg.out}/efficiency.json, efficiency.md and efficiency.png")


COMMANDS = {
    "collect": (CollectConfig, _collect),
    "train": (TrainConfig, _train),
    "eval": (EvalConfig, _eval),
    "train-policy": (PolicyConfig, _train_policy),
    "train-critic": (CriticConfig, _train_critic),
    "train-guardrail": (GuardrailConfig, _train_guardrail),
    "train-high": (HighLevelConfig, _train_high),
    "finetune": (FinetuneConfig, _finetune),
    "demo": (DemoConfig, _demo),
    "probe": (ProbeConfig, _probe),
    "surprise": (SurpriseConfig, _surprise),
    "bench": (EfficiencyConfig, _bench),
    "pretrain": (PretrainConfig, _pretrain),
    "probe-features": (FeatureProbeConfig, _probe_features),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if argv[:1] == ["--"]:  # `torchrun ... -m ami.cli -- train ...`: keeps torchrun off our options
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"ami: error: unknown command '{name}'; choose one of {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    config_cls, run = COMMANDS[name]
    # tyro reports its own parse errors (unknown option, bad choice) and exits with code 2
    cfg = tyro.cli(config_cls, args=rest, prog=f"ami {name}",
                   default=_world_preset(config_cls, rest))
    try:
        run(cfg)
    except AmiError as e:
        if debug:
            raise
        _print_error(f"ami: error: {_one_line(e)}")
        return 2
    except OSError as e:  # disk full, permissions: the user's to fix, but not a usage error
        if debug:
            raise
        _print_error(f"ami: error: {_one_line(e)} (--debug shows where)")
        return 1
    except KeyboardInterrupt:
        print("ami: interrupted", file=sys.stderr)
        return 130
    return 0


def _world_preset(config_cls: type, args: list[str]):
    """The defaults of the world the command line names (`--world`, or the episodes of
    `--data`), so that a world's preset applies; options given still win."""
    from ami.presets import preset
    world = _option(args, "--world") or _option(args, "--env")
    data = _option(args, "--data")
    if world is None and config_cls is EvalConfig:  # the world of the run it evaluates
        from ami.io import run_world
        try:
            world = run_world(Path(_option(args, "--run") or EvalConfig.run))
        except AmiError:
            pass  # the command itself will say what is wrong with the run
    if world is None and data is not None:
        from ami.data.dataset import read_header
        try:
            world = read_header(data)["world"]
        except AmiError:  # the command itself will say what is wrong with the file
            pass
    return preset(config_cls, world)


def _option(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _print_error(line: str) -> None:
    """Print an error on stderr once, not once per process: under torchrun every rank usually
    stops on the same error, so rank 0 prints it and the others one line that names them (a
    rank that fails alone, on a file missing from its machine, is still seen)."""
    from ami.distributed import process_rank
    rank = process_rank()
    print(line if rank == 0 else f"ami: rank {rank}: stopped on an error (rank 0 prints it; "
                                 f"--debug shows each rank's own)", file=sys.stderr)


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
