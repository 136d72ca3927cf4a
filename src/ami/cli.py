"""The `ami` command: parse options into a config, call the library function, print the result.

    ami collect | train | train-policy | eval | demo  [--help] [options]

Add --debug anywhere to see a traceback instead of a one-line error.
"""

from __future__ import annotations

import json
import sys

import tyro

from ami.config import CollectConfig, DemoConfig, EvalConfig, PolicyConfig, TrainConfig
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
    from ami.train_policy import train_policy_run
    print(f"wrote {train_policy_run(cfg)}")


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


COMMANDS = {
    "collect": (CollectConfig, _collect),
    "train": (TrainConfig, _train),
    "eval": (EvalConfig, _eval),
    "train-policy": (PolicyConfig, _train_policy),
    "demo": (DemoConfig, _demo),
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
    cfg = tyro.cli(config_cls, args=rest, prog=f"ami {name}")
    try:
        run(cfg)
    except AmiError as e:
        if debug:
            raise
        print(f"ami: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions: the user's to fix, but not a usage error
        if debug:
            raise
        print(f"ami: error: {_one_line(e)} (--debug shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ami: interrupted", file=sys.stderr)
        return 130
    return 0


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
