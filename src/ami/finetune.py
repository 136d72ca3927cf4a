"""`ami finetune`: learn from the agent's own experience.

The agent acts towards goals as in `ami eval`; its short-term memory keeps the frames and actions
of its episodes. The predictor is then trained further on windows of those episodes, mixed with
replay of the original data. The encoder stays frozen: the embedding space is what the goal
cost, the critic, the guardrail and the Mode-1 policy were trained on, and moving it would void
them (as in V-JEPA 2-AC, the predictor adapts to a fixed perception). The latent prediction
error on the agent's own states, before and after, says whether it learned from them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ami.actor import ActionBounds
from ami.agent import Agent, Heads, Task
from ami.config import CostConfig, FinetuneConfig, TrainConfig, from_dict, to_dict
from ami.data.dataset import EpisodeDataset, EpisodeWriter
from ami.data.windows import WindowSampler
from ami.envs import make_env
from ami.errors import AmiError
from ami.evaluate.planning import sample_task_states
from ami.heads import CRITIC_FILE, GUARDRAIL_FILE, POLICY_FILE
from ami.hierarchy import HIGH_FILE
from ami.io import load_model, save_model, write_json
from ami.train import jepa_loss

AGENT_DATA = "agent_episodes.h5"


def collect_agent_episodes(agent: Agent, env, world: str, cfg: FinetuneConfig, path: Path
                           ) -> int:
    """Run the agent for cfg.episodes episodes; write what its memory kept to `path`."""
    for i in tqdm(range(cfg.episodes), desc="act", unit="ep"):
        seed = cfg.seed + i
        env.reset(seed=seed)
        start, goal = sample_task_states(env, "rooms", np.random.default_rng(seed), None)
        env.set_state(start)
        env.set_goal(goal)
        agent.reset(Task(goal_state=goal, plan=cfg.plan), env.render(), env=env, seed=seed)
        for _ in range(cfg.budget):
            obs, _, success, _, _ = env.step(agent.act())
            agent.observe(obs)
            if success:
                break
    agent.memory.end_episode()
    path.unlink(missing_ok=True)
    with EpisodeWriter(path, world, env.observation_space.shape,
                       env.action_space.shape[0]) as writer:
        for episode in agent.memory.episodes:
            writer.append(episode["frames"], episode["actions"])
        return len(writer)


@torch.no_grad()
def prediction_error(model, sampler: WindowSampler, cfg: TrainConfig,
                     starts: np.ndarray | None = None, batch: int = 256) -> float:
    """Mean one-step latent prediction error (MSE) over the sampler's windows (or `starts`)."""
    model.eval()
    starts = sampler.starts if starts is None else starts
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        frames, actions = sampler.get(starts[i:i + batch])
        terms = jepa_loss(model, torch.from_numpy(frames), torch.from_numpy(actions), cfg)
        total += float(terms["pred"]) * len(frames)
        count += len(frames)
    return total / count


def finetune(cfg: FinetuneConfig) -> dict:
    """Collect the agent's episodes, fine-tune a copy of the world model; returns the report."""
    run = Path(cfg.run)
    out = Path(cfg.out) if cfg.out is not None else run.with_name(run.name + "-finetuned")
    if out.exists() and any(out.iterdir()):
        raise AmiError(f"{out} exists and is not empty; choose another --out")
    model = load_model(run)
    saved = json.loads((run / "config.json").read_text())
    train_cfg = from_dict(TrainConfig, saved["train"])
    env = make_env(saved["world"])
    # the heads the plan asks for (a Mode-1 policy, a high level), as `ami eval` loads them
    agent = Agent(model, ActionBounds.of(env), Heads.load(run, model, cfg.plan, CostConfig()),
                  keep_frames=True, memory_capacity=cfg.episodes * cfg.budget + 1)
    out.mkdir(parents=True, exist_ok=True)
    n = collect_agent_episodes(agent, env, saved["world"], cfg, out / AGENT_DATA)
    if n == 0:
        raise AmiError("the agent produced no episode to learn from")
    h, fs = model.cfg.history, model.cfg.frameskip
    agent_data = EpisodeDataset.load(out / AGENT_DATA)
    # the last fifth of the agent's episodes is held out: does what it learned carry over?
    n_held = agent_data.num_episodes // 5
    mine = WindowSampler(agent_data, h, train_cfg.future, fs,
                         np.arange(agent_data.num_episodes - n_held))
    held = WindowSampler(agent_data, h, train_cfg.future, fs,
                         np.arange(agent_data.num_episodes - n_held, agent_data.num_episodes)) \
        if n_held else None
    replay = WindowSampler(EpisodeDataset.load(train_cfg.data), h, train_cfg.future, fs) \
        if cfg.replay > 0 else None
    replay_starts = None
    if replay is not None:  # a fixed sample of the original windows: is anything forgotten?
        idx = np.random.default_rng(0).choice(len(replay), min(2048, len(replay)), replace=False)
        replay_starts = replay.start_of(np.sort(idx))

    def errors() -> dict[str, float | None]:
        return {"agent_episodes": prediction_error(model, mine, train_cfg),
                "held_out_agent_episodes": prediction_error(model, held, train_cfg)
                if held else None,
                "original_data": prediction_error(model, replay, train_cfg, replay_starts)
                if replay else None}

    before = errors()

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model.encoder.requires_grad_(False)
    opt = torch.optim.AdamW(model.predictor.parameters(), lr=cfg.lr,
                            weight_decay=train_cfg.weight_decay)
    n_replay = int(round(cfg.replay * cfg.batch_size)) if replay is not None else 0
    for _ in tqdm(range(cfg.steps), desc="finetune", unit="step"):
        frames, actions = mine.sample(cfg.batch_size - n_replay, rng)
        if n_replay:
            f2, a2 = replay.sample(n_replay, rng)
            frames, actions = np.concatenate([frames, f2]), np.concatenate([actions, a2])
        model.predictor.train()  # the encoder (and its BatchNorm statistics) stays as it was
        loss = jepa_loss(model, torch.from_numpy(frames), torch.from_numpy(actions),
                         train_cfg)["pred"]
        if not torch.isfinite(loss):
            raise AmiError(f"fine-tuning diverged (loss {loss.item()}); {run} is unchanged")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    after = errors()

    model.encoder.requires_grad_(True)
    save_model(model.eval(), out)
    write_json(out / "config.json", {**saved, "finetuned_from": str(run)})
    for head in (POLICY_FILE, CRITIC_FILE, GUARDRAIL_FILE, HIGH_FILE):
        if (run / head).exists():  # heads read the encoder's embeddings: keep them beside it
            shutil.copy2(run / head, out / head)
    report = {"run": str(out), "agent_episodes": n, "windows": len(mine),
              "prediction_error_before": before, "prediction_error_after": after,
              "config": to_dict(cfg)}
    write_json(out / "finetune.json", report)
    return report

