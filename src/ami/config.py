"""Every option a user can set, as dataclasses; each field's docstring is its `--help` line.

The defaults are the Two-Rooms preset, sized so that `ami demo` collects, trains and evaluates on
2 CPU cores in minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro


@dataclass
class CollectConfig:
    """Collect episodes from a world into an HDF5 file."""

    out: Path = Path("data/two_rooms.h5")
    """HDF5 file to write; episodes are appended if it exists."""
    world: str = "two_rooms"
    """Built-in world to collect from."""
    episodes: int = 400
    """Number of episodes to collect."""
    steps: int = 100
    """Steps (actions) per episode."""
    heuristic_ratio: float = 0.5
    """Fraction of episodes driven by the noisy door-seeking policy; the rest are random walks."""
    random_layout: bool = False
    """Draw a new wall and door position per episode (eb_jepa's harder setting)."""
    seed: int = 0
    """Random seed of the policies and of the world; episode i depends only on (seed, i)."""
    resume: bool = False
    """Continue an interrupted collection: add episodes until `out` holds `episodes` in all."""


@dataclass
class ModelConfig:
    """The world model: encoder (perception) and action-conditioned predictor."""

    embed_dim: int = 32
    """Size of the embedding z of one frame (after the projector)."""
    encoder_width: int = 16
    """Channels of the encoder's first convolution; later ones double."""
    predictor_width: int = 128
    """Hidden width of the predictor MLP."""
    predictor_depth: int = 3
    """Number of linear layers in the predictor MLP."""
    history: int = 1
    """Frames of history the predictor conditions on."""
    frameskip: int = 5
    """Environment steps per predictor step; the predictor takes a block of this many actions."""
    image_size: int = 64
    """Side of the square input image (set from the data at training time)."""
    channels: int = 3
    """Image channels (set from the data at training time)."""
    action_dim: int = 2
    """Dimension of one environment action (set from the data at training time)."""
    action_scale: float = 2.45
    """Actions are divided by this before entering the predictor (set from the world)."""


@dataclass
class TrainConfig:
    """Train a JEPA world model from pixels: MSE(ẑ, z) + λ·SIGReg, end to end."""

    data: Path = Path("data/two_rooms.h5")
    """HDF5 episodes file written by `ami collect`."""
    run: Path | None = None
    """Run directory to create; default runs/<world>-<time>."""
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 1500
    """Optimisation steps."""
    batch_size: int = 64
    """Windows per step."""
    future: int = 3
    """Predicted frames per window (teacher-forced one-step predictions)."""
    smooth_weight: float = 2.0
    """Weight of a temporal-smoothness term, MSE(z_t+1, z_t) (PLDM): makes latent distance track
    time, so the goal cost is informative far from the goal."""
    rollout_loss: bool = False
    """Also train on the model's own autoregressive rollout over the window."""
    lr: float = 2e-3
    """Peak learning rate (AdamW)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup: int = 100
    """Linear warm-up steps before cosine decay to 5 % of the peak."""
    sigreg_weight: float = 0.1
    """λ of the SIGReg term."""
    sigreg_projections: int = 256
    """Random 1-D projections of SIGReg, resampled each step."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this (0: off)."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda or mps; under torchrun, cuda means
    cuda:LOCAL_RANK."""
    bf16: tyro.conf.DisallowNone[bool | None] = None
    """bf16 autocast for the forward pass; default: on with CUDA, off elsewhere (--bf16 turns it
    on for a CPU with AMX)."""
    compile: bool = False
    """torch.compile the training step (best on CUDA; the first steps wait for the compiler)."""
    stream: tyro.conf.DisallowNone[bool | None] = None
    """Read windows from the HDF5 file on demand instead of loading every frame into memory;
    default: stream when the frames would take more than a third of the available memory."""
    workers: int = 2
    """Loader processes that read windows when streaming (0: read in the training process)."""
    seed: int = 0
    """Random seed of initialisation and batch sampling."""
    log_every: int = 50
    """Write metrics.jsonl every this many steps."""
    checkpoint_every: int = 250
    """Write a resumable checkpoint.safetensors (model, optimiser, RNG states) every this many
    steps."""
    resume: Path | None = None
    """Run directory to continue from its last checkpoint, with the run's own settings."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class PlanConfig:
    """The actor's planner and its receding-horizon loop."""

    planner: Annotated[Literal["cem", "mppi", "gradient", "policy"],
                       tyro.conf.arg(name="actor", prefix_name=False)] = "cem"
    """The actor (flag --actor): a Mode-2 planner, or `policy`, the Mode-1 policy alone
    (`ami train-policy` first)."""
    samples: int = 300
    """Candidate action sequences per iteration (for gradient: restarts optimised in a batch)."""
    iterations: int = 30
    """Refinement iterations per plan."""
    elites: int = 30
    """Best candidates that define the next sampling distribution."""
    horizon: int = 5
    """Predictor steps planned ahead (each is `frameskip` environment steps)."""
    init_std: float = 1.0
    """Initial sampling std, as a fraction of the action bound."""
    min_std: float = 0.05
    """Floor of the sampling std, as a fraction of the action bound."""
    momentum: float = 0.0
    """CEM: weight of the previous mean and std in each update."""
    noise_beta: float = 0.0
    """CEM/MPPI: colour of the sampling noise over time, power ∝ 1/f^beta (0 white, 2 brown;
    iCEM)."""
    temperature: float = 0.1
    """MPPI: softmax temperature, in units of the iteration's cost std."""
    gradient_lr: float = 0.3
    """Gradient: Adam step size, as a fraction of the action bound."""
    cost: Literal["final", "sum"] = "sum"
    """Goal distance averaged over the horizon (arrive early and stay), or on the final step only
    (which lets receding horizon put arriving off)."""
    replan_every: int = 5
    """Environment steps executed from each plan before planning again."""
    warm_start: bool = True
    """Start each plan from the previous one shifted by the executed steps."""
    policy_init: bool = False
    """Seed a plan that has no warm start with the Mode-1 policy's proposal."""


@dataclass
class PolicyConfig:
    """Train the Mode-1 policy (z, z_goal) → action block on a run's data, by hindsight
    relabelling, on the run's frozen encoder."""

    run: Path = Path("runs/latest")
    """Run directory with model.safetensors; policy.safetensors is written there."""
    data: Path | None = None
    """Episodes to train on; default: the data the world model was trained on."""
    steps: int = 3000
    """Optimisation steps."""
    batch_size: int = 256
    """(state, goal, action block) samples per step."""
    max_blocks: int = 8
    """Hindsight goals are 1..max_blocks action blocks ahead in the same episode."""
    width: int = 256
    """Hidden width of the policy MLP."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, cosine decay)."""
    seed: int = 0
    """Random seed of initialisation and sampling."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class EvalConfig:
    """Plan towards goals in the world and score success with the true state."""

    run: Path = Path("runs/latest")
    """Run directory holding model.safetensors."""
    episodes: int = 50
    """Evaluation episodes."""
    budget: int = 200
    """Environment steps allowed per episode."""
    seed: int = 1000
    """Seed of the start/goal draws and of the planner; episode i uses seed + i."""
    plan: PlanConfig = field(default_factory=PlanConfig)
    random_layout: bool = False
    """Evaluate with a random wall and door per episode."""
    gif: bool = True
    """Save a GIF of the first episode (goal marked) in the run directory."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class DemoConfig:
    """collect → train → eval on the Two-Rooms preset, then a summary table."""

    runs: Path = Path("runs")
    """Where the demo's data and run directory go."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def to_dict(cfg) -> dict:
    """A JSON-ready dict of a config (paths as strings)."""
    def convert(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [convert(x) for x in v]
        return v
    return convert(asdict(cfg))


def from_dict(cls, d: dict):
    """Rebuild a config dataclass from `to_dict`'s output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    kwargs = {}
    for name, value in d.items():
        default = getattr(cls(), name) if name in known else None
        if is_dataclass(default) and isinstance(value, dict):
            kwargs[name] = from_dict(type(default), value)
        elif isinstance(default, Path) or (name in ("data", "run", "out", "resume")
                                             and isinstance(value, str)):
            kwargs[name] = Path(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
