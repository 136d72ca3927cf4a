"""Where PushT episodes of `ami eval` fail: agent position, block position or block angle.

Reads a run's eval.json (written by `ami eval`; `final_state` is recorded per episode since
issue 5, older files have only the position distance) and, with `--data`, how the training
data covers the block's angle:

    python benchmarks/pusht_failures.py --eval runs/pusht/eval.json [--data data/pusht.h5]

Success (`ami.envs.pusht`): ‖(agent, block) − goal‖₂ < 20 over the four coordinates, and the
block's angle within 20°, at any step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ami.envs.pusht import PushT, angle_difference

# the world's own success test, not a copy of its numbers
RADIUS, ANGLE_DEG = PushT.success_radius, float(np.degrees(PushT.angle_tolerance))


def angle_deg(a, b) -> np.ndarray:
    """Absolute angle difference in degrees, wrapped to [0, 180] (the world's own rule)."""
    return np.degrees(angle_difference(a, b))


def failures(eval_json: Path) -> dict:
    episodes = json.loads(eval_json.read_text())["per_episode"]
    out = {"episodes": len(episodes), "successes": sum(e["success"] for e in episodes)}
    for name, group in (("success", [e for e in episodes if e["success"]]),
                        ("failure", [e for e in episodes if not e["success"]])):
        if not group:
            continue
        start, goal = np.array([e["start"] for e in group]), np.array([e["goal"] for e in group])
        out[f"{name}_task_median"] = {   # how far each goal is from its start
            "agent_move": float(np.median(np.linalg.norm(goal[:, :2] - start[:, :2], axis=1))),
            "block_move": float(np.median(np.linalg.norm(goal[:, 2:4] - start[:, 2:4], axis=1))),
            "turn_deg": float(np.median(angle_deg(goal[:, 4], start[:, 4]))),
        }
    failed = [e for e in episodes if not e["success"]]
    if not failed:
        return out
    goal = np.array([e["goal"] for e in failed])
    start = np.array([e["start"] for e in failed])
    dist = np.array([e["final_distance"] for e in failed])
    out["failure_final_position_distance_q25_50_75"] = np.percentile(dist, [25, 50, 75]).tolist()
    out["failures_needing_no_turn"] = int(np.sum(angle_deg(goal[:, 4], start[:, 4]) < ANGLE_DEG))
    if all("final_state" in e for e in failed):
        end = np.array([e["final_state"] for e in failed])
        agent = np.linalg.norm(end[:, :2] - goal[:, :2], axis=1)
        block = np.linalg.norm(end[:, 2:4] - goal[:, 2:4], axis=1)
        turn = angle_deg(end[:, 4], goal[:, 4])
        position_ok, angle_ok = dist < RADIUS, turn < ANGLE_DEG
        out["failure_final_median"] = {"agent": float(np.median(agent)),
                                       "block": float(np.median(block)),
                                       "angle_deg": float(np.median(turn))}
        out["failures_missing"] = {   # at the last step; success counts at any step
            "position_only": int(np.sum(~position_ok & angle_ok)),
            "angle_only": int(np.sum(position_ok & ~angle_ok)),
            "both": int(np.sum(~position_ok & ~angle_ok)),
            "block_within_radius": int(np.sum(block < RADIUS)),
            "agent_within_radius": int(np.sum(agent < RADIUS)),
        }
    return out


def angle_coverage(data_path: Path) -> dict:
    import h5py
    with h5py.File(data_path, "r") as f:
        states = np.stack([g["states"][:] for g in f["episodes"].values()])   # (E, T, 5)
    theta = states[..., 4]
    hist, _ = np.histogram(theta % (2 * np.pi), bins=12, range=(0, 2 * np.pi))
    turn5 = angle_deg(theta[:, 5:], theta[:, :-5])
    turn25 = angle_deg(theta[:, 25:], theta[:, :-25])
    moved5 = np.linalg.norm(states[:, 5:, 2:4] - states[:, :-5, 2:4], axis=-1)
    return {"episodes": len(states),
            "angle_share_per_30deg_percent": (100 * hist / hist.sum()).round(1).tolist(),
            "windows_5_steps_turn_over_2deg": float(np.mean(turn5 > 2)),
            "windows_5_steps_turn_over_10deg": float(np.mean(turn5 > 10)),
            "windows_5_steps_block_moved_over_2": float(np.mean(moved5 > 2)),
            "turn_25_steps_median_deg": float(np.median(turn25)),
            "turn_25_steps_over_20deg": float(np.mean(turn25 > 20))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True, help="eval.json of `ami eval`")
    parser.add_argument("--data", type=Path, help="PushT episodes (HDF5) to check angle coverage")
    args = parser.parse_args()
    result = {"failures": failures(args.eval)}
    if args.data:
        result["data"] = angle_coverage(args.data)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
