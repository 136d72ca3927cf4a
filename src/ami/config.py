"""Every option a user can set, as dataclasses; each field's docstring is its `--help` line.

The defaults are the Two-Rooms preset, sized so that `ami demo` collects, trains and evaluates on
2 CPU cores in minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import tyro


@dataclass
class BallisticConfig:
    """The ballistic world: balls under gravity in a walled box, an optional occluder."""

    balls: int = 1
    """Number of balls (1 to 3)."""
    gravity: float = 0.25
    """Downward acceleration (px per step²)."""
    restitution: float = 0.95
    """Fraction of the normal speed a bounce keeps (floor, walls and other balls)."""
    radii: tuple[float, ...] = (4.0, 3.0, 2.5)
    """Radius of each ball (px); ball i has radii[i]."""
    palette: tuple[str, ...] = ("#e6194b", "#3cb44b", "#4363d8", "#ffe119", "#f58231",
                                "#42d4f4")
    """Colours a ball can take ('#rrggbb'); ball i starts with palette[i]."""
    recolour_prob: float = 0.02
    """Probability per step that a ball takes another colour of the palette: colour carries no
    physics, so a world model should learn to ignore it."""
    occluder: bool = True
    """Draw a grey vertical bar in front of the balls, which hides them as they pass."""
    occluder_x: float = 32.0
    """Centre of the occluder (px)."""
    occluder_width: float = 10.0
    """Width of the occluder (px); wider than a ball, so that it can hide one whole."""


@dataclass
class CollectConfig:
    """Collect episodes from a world into an HDF5 file."""

    out: Path = Path("data/two_rooms.h5")
    """HDF5 file to write; episodes are appended if it exists."""
    world: Annotated[str, tyro.conf.arg(aliases=("--env",))] = "two_rooms"
    """World to collect from (also --env): a built-in world (two_rooms, ballistic, maze,
    pusht), a registered gymnasium id (Pendulum-v1), or package.module:ClassName; the last two
    are seen through their pixels and need continuous (Box) actions."""
    episodes: int = 400
    """Number of episodes to collect."""
    steps: int = 100
    """Steps (actions) per episode."""
    heuristic_ratio: float = 0.5
    """Fraction of episodes driven by the world's scripted policy (Two-Rooms: the noisy door
    seeker; PushT: the noisy block pusher); the rest are random walks."""
    random_layout: bool = False
    """Draw a new wall and door position per episode (eb_jepa's harder setting)."""
    push_prob: float = 0.05
    """Ballistic: probability per step that the collection policy pushes ball 0 (a random
    change of velocity); 0 collects free flight only."""
    ballistic: BallisticConfig = field(default_factory=BallisticConfig)
    image_size: int = 64
    """PushT (64, 96 or 224) and gymnasium environments: side of the square frames."""
    policy: str | None = None
    """Gymnasium environments: package.module:function, called as function(env, rng) and
    returning a policy, observation -> action; default: uniform random actions."""
    workers: int = 1
    """Processes that run episodes (their results are written in order: the file is the same
    for any number)."""
    seed: int = 0
    """Random seed of the policies and of the world; episode i depends only on (seed, i)."""
    resume: bool = False
    """Continue an interrupted collection: add episodes until `out` holds `episodes` in all."""


@dataclass
class ViTConfig:
    """A small Vision Transformer (`ami.perception.vit`); tiny defaults that train on a CPU."""

    patch: int = 8
    """Side of a square patch (pixels); one token per patch (and tubelet)."""
    width: int = 64
    """Token width."""
    depth: int = 4
    """Transformer blocks."""
    heads: int = 4
    """Attention heads (a divisor of width)."""
    tubelet: int = 0
    """Frames per token in time: 0 picks 2 for V-JEPA pretraining and 1 otherwise; an image is
    repeated to fill a tubelet."""


@dataclass
class ModelConfig:
    """The world model: encoder (perception) and action-conditioned predictor."""

    embed_dim: int = 32
    """Size of the embedding z of one frame (after the projector)."""
    encoder: Literal["cnn", "vit"] = "cnn"
    """Perception: a small CNN, or a ViT (`--model.vit.*`; `ami train --encoder-from` loads one
    pretrained by `ami pretrain`)."""
    vit: ViTConfig = field(default_factory=ViTConfig)
    encoder_width: int = 16
    """Channels of the encoder's first convolution; later ones double."""
    projector_bias: bool = False
    """CNN encoder: a bias on the projector's first Linear (BatchNorm removes it again; older
    checkpoints have one)."""
    predictor_width: int = 128
    """Hidden width of the predictor MLP."""
    predictor_depth: int = 3
    """Number of linear layers in the predictor MLP."""
    predictor_activation: Literal["gelu", "relu", "silu"] = "relu"
    """Nonlinearity of the predictor MLP. ReLU: the same success as GELU and SiLU on Two-Rooms,
    and the fastest plan on a CPU (~10 % faster than SiLU, ~25 % than exact GELU); checkpoints
    from before this field existed were GELU and load as GELU."""

    # fields whose default changed: a saved config without them meant the old value
    LEGACY_DEFAULTS: ClassVar[dict] = {"predictor_activation": "gelu", "projector_bias": True}
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
    kind: Annotated[Literal["jepa", "generative"],
                    tyro.conf.arg(name="model", prefix_name=False)] = "jepa"
    """Which world model (flag --model): jepa predicts embeddings; generative (a baseline,
    `ami.baselines.generative`) adds a decoder and predicts the next frame's pixels."""


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
    default: stream when the frames would take more than half the available memory."""
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
    """Run directory to continue from its last checkpoint, with the run's own settings (`ami
    pretrain --resume` continues a pretraining run's)."""
    progress: bool = True
    """Show a progress bar."""
    encoder_from: Path | None = None
    """Start the encoder from a ViT pretrained by `ami pretrain` (its run directory): sets
    --model.encoder vit and the ViT's shape from it."""
    freeze_encoder: bool = False
    """Keep the encoder's backbone fixed and train the projector and the predictor on it (with
    --encoder-from: the two-stage world model, V-JEPA 2-AC style)."""


@dataclass
class PlanConfig:
    """The actor's planner and its receding-horizon loop."""

    planner: Annotated[Literal["cem", "mppi", "gradient", "policy", "hierarchical"],
                       tyro.conf.arg(name="actor", aliases=("--planner",),
                                     prefix_name=False)] = "cem"
    """The actor (flag --actor, or --planner): a Mode-2 planner; `policy`, the Mode-1 policy
    alone (`ami train-policy` first); or `hierarchical`, H-JEPA: the high level (`ami
    train-high` first) plans subgoals, CEM plans actions to the first one."""
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
    replan_every: int = 5
    """Environment steps executed from each plan before planning again."""
    warm_start: bool = True
    """Start each plan from the previous one shifted by the executed steps."""
    policy_init: bool = False
    """Seed a plan that has no warm start with the Mode-1 policy's proposal."""
    high_search: Literal["graph", "cem"] = "graph"
    """Hierarchical: how the high level finds subgoals: graph, the fewest macro-steps through
    its landmark graph (edges: the high-level predictor on macro-actions taken in the data);
    cem, CEM over macro-actions through the high-level predictor."""
    high_horizon: int = 6
    """Hierarchical, cem: macro-steps the high level plans ahead (each is `ami train-high
    --blocks` action blocks)."""
    high_samples: int = 200
    """Hierarchical, cem: macro-action sequences sampled per iteration."""
    high_iterations: int = 10
    """Hierarchical, cem: CEM iterations of the high level per plan."""
    high_elites: int = 20
    """Hierarchical, cem: elites of the high level's CEM."""


@dataclass
class CostConfig:
    """The cost module: which terms the agent minimises, and their weights."""

    goal: Literal["final", "sum"] = "sum"
    """Goal distance averaged over the horizon (arrive early and stay), or on the final step only
    (which lets receding horizon put arriving off)."""
    effort_weight: float = 0.0
    """Weight of the action-effort term (mean squared action / scale²)."""
    critic_weight: float = 0.0
    """Weight of the critic's cost-to-go as terminal cost (0: off; needs `ami train-critic`)."""
    guardrail: bool = False
    """Add the run's guardrail (`ami train-guardrail`) as a cost term."""
    guardrail_weight: float = 100.0
    """Weight of the guardrail term (probability of entering the forbidden set)."""
    goal_space: Literal["latent", "pixels"] = "latent"
    """Where the goal distance is measured: between predicted and goal embeddings, or between
    the decoded predicted frames and the goal image (needs a model with a decoder:
    `ami train --model generative`)."""


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


@dataclass
class CriticConfig:
    """Train the critic V(z, z_goal) (cost-to-go in action blocks) on a run's data, by
    temporal-distance regression with hindsight goals, on the run's frozen encoder."""

    run: Path = Path("runs/latest")
    """Run directory with model.safetensors; critic.safetensors is written there."""
    data: Path | None = None
    """Episodes to train on; default: the data the world model was trained on."""
    steps: int = 3000
    """Optimisation steps."""
    batch_size: int = 256
    """(state, goal) pairs per step."""
    max_blocks: int = 20
    """Hindsight goals are 0..max_blocks action blocks ahead in the same episode."""
    expectile: float = 0.1
    """τ of the expectile regression: below 0.5 leans towards the shortest observed path."""
    width: int = 256
    """Hidden width of the critic MLP."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, cosine decay)."""
    seed: int = 0
    """Random seed of initialisation and sampling."""


@dataclass
class GuardrailConfig:
    """Train a guardrail: a classifier of forbidden states on embeddings, from the run's data
    labelled by a box of positions, on the run's frozen encoder."""

    run: Path = Path("runs/latest")
    """Run directory with model.safetensors; guardrail.safetensors is written there."""
    box: tuple[float, float, float, float] = (8.0, 24.0, 20.0, 40.0)
    """Forbidden box of positions x0 y0 x1 y1 (pixels; default: the middle of the left room, on
    the direct route from its far side to the door, with room to pass on either side)."""
    margin: float = 2.0
    """Label states this close to the box as forbidden too (room to spare for prediction
    error)."""
    segments: bool = True
    """Classify whole action blocks (the embedding a block ends at and its actions: was any of
    its steps forbidden?) rather than the single states the model predicts, which miss a block
    that cuts a corner of the box between two predictions."""
    data: Path | None = None
    """Episodes to label and train on; default: the data the world model was trained on."""
    steps: int = 2000
    """Optimisation steps."""
    batch_size: int = 256
    """States per step, half of them forbidden."""
    width: int = 128
    """Hidden width of the classifier."""
    lr: float = 1e-3
    """Learning rate (AdamW)."""
    seed: int = 0
    """Random seed of initialisation and sampling."""


@dataclass
class HighLevelConfig:
    """Train H-JEPA's high level on a run's frozen embeddings: a predictor from z_t to z_t+K
    conditioned on a macro-action (a learned code of the K actions between), JEPA loss +
    SIGReg on the codes; also a position probe for pictures. Writes high.safetensors."""

    run: Path = Path("runs/latest")
    """Run directory with model.safetensors; high.safetensors is written there."""
    data: Path | None = None
    """Episodes to train on; default: the data the world model was trained on."""
    blocks: int = 4
    """Action blocks per macro-step: K = blocks · frameskip environment steps."""
    macro_dim: int = 8
    """Size of the macro-action code m."""
    width: int = 256
    """Hidden width of the high-level predictor and of the macro-action encoder."""
    depth: int = 3
    """Linear layers of each of them."""
    window: int = 3
    """Macro-steps per training window (teacher-forced and rolled out)."""
    steps: int = 4000
    """Optimisation steps."""
    batch_size: int = 256
    """Windows per step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW, cosine decay to 5 %)."""
    sigreg_weight: float = 0.1
    """λ of SIGReg on the macro-action codes."""
    landmarks: int = 100
    """Landmarks of the high level's graph (k-means centres of the run's embeddings)."""
    edge_samples: int = 20000
    """Macro-steps of the data the predictor is asked about to find the graph's edges."""
    min_edge_count: int = 2
    """An edge needs at least this many of them (filters rare mispredictions)."""
    probe_steps: int = 2000
    """Steps of the position probe (embedding → x, y) that draws subgoals; 0: no probe."""
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
    cost: CostConfig = field(default_factory=CostConfig)
    goal_rule: Literal["rooms", "far", "trajectory", "pose"] = "rooms"
    """rooms: start and goal uniform in different rooms; far: the same, each at least 20 px
    from the door (the longest detours); trajectory (any world with states, the LeWM/DINO-WM
    protocol): start from a state of a held-out episode, the goal is its frame `goal_offset`
    steps later; pose (PushT): the block moved and turned to a pose no trajectory holds."""
    goal_offset: int = 25
    """trajectory: steps between the start and the goal frame in the held-out episode."""
    goal_tolerance: float = 0.5
    """trajectory, in a gymnasium environment: success is its state (vector observation)
    within this Euclidean distance of the goal's."""
    forbidden_box: tuple[float, float, float, float] | None = None
    """Score entries into this box of positions as violations, and keep starts and goals out
    of it (default: the guardrail's own box when --cost.guardrail)."""
    random_layout: bool = False
    """Evaluate with a random wall and door per episode."""
    min_rooms: int = 3
    """Maze: the goal's room is at least this many rooms from the start's, through the doors
    (other worlds ignore it)."""
    gif: bool = True
    """Save a GIF of the first episode (goal marked) in the run directory."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class FinetuneConfig:
    """Act with the agent, keep its own episodes in memory, and fine-tune the predictor on them
    (encoder frozen, with replay of the original data); reports prediction error before and
    after."""

    run: Path = Path("runs/latest")
    """Run directory to start from (left unchanged)."""
    out: Path | None = None
    """Run directory for the fine-tuned model; default: <run>-finetuned."""
    episodes: int = 30
    """Agent episodes to collect (start and goal as in `ami eval`)."""
    budget: int = 200
    """Environment steps allowed per episode."""
    steps: int = 300
    """Fine-tuning steps."""
    batch_size: int = 64
    """Windows per step."""
    replay: float = 0.5
    """Fraction of each batch drawn from the run's original data (against forgetting)."""
    lr: float = 3e-4
    """Learning rate (AdamW, constant)."""
    seed: int = 2000
    """Seed of the agent's episodes and of fine-tuning."""
    plan: PlanConfig = field(default_factory=PlanConfig)


@dataclass
class DemoConfig:
    """collect → train → eval on the Two-Rooms preset, then a summary table."""

    runs: Path = Path("runs")
    """Where the demo's data and run directory go."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class ProbeConfig:
    """Probe a run's frozen embeddings for the recorded physical state: linear and small-MLP
    probes, trained on some episodes and scored on others."""

    run: Path = Path("runs/latest")
    """Run directory with model.safetensors; probe.json is written there."""
    data: Path | None = None
    """Episodes to probe (they must record states); default: the data the run trained on."""
    frames: int = 0
    """Frames whose embeddings a probe reads, the current one and those before it, `frameskip`
    apart (velocity is not visible in one frame); 0: the predictor's history."""
    test_fraction: float = 0.25
    """Share of the episodes held out to score the probes; the probes never train on them."""
    max_samples: int = 40000
    """At most this many (embeddings, state) samples, drawn evenly from the episodes."""
    ridge: float = 1e-3
    """L2 penalty of the linear probe, on standardised embeddings."""
    mlp_width: int = 256
    """Hidden width of the MLP probe (two hidden layers)."""
    mlp_steps: int = 2000
    """Optimisation steps of the MLP probe (Adam, batches of 256)."""
    seed: int = 0
    """Seed of the episode split and of the MLP probe."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class SurpriseConfig:
    """Violation of expectation: the world model's surprise on matched possible/impossible
    clips of the run's world, scored by relative accuracy and AUROC per category."""

    run: Path = Path("runs/latest")
    """Run directory with model.safetensors; surprise.json and surprise.png are written there."""
    pairs: int = 100
    """Matched pairs per category."""
    steps: int = 48
    """Environment steps per clip (the violation happens in the middle third)."""
    categories: tuple[str, ...] = ()
    """Categories to score (default: all of the world's: ballistic teleport, vanish,
    pass_through, gravity, colour; two_rooms teleport, colour)."""
    horizon: int = 1
    """Predictor steps between the context window and the frame it predicts."""
    seed: int = 2000
    """Seed of the clips; pair i of a category depends only on (seed, category, i)."""
    batch: int = 50
    """Clips encoded at once."""
    plot: bool = True
    """Save surprise.png: surprise over time of the first pair of each category."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class PretrainConfig:
    """Pretrain a ViT by masked latent prediction (I-JEPA on images, V-JEPA on clips): no labels,
    no pixels predicted. Writes encoder.safetensors for `ami probe-features` and
    `ami train --encoder-from`; a killed run continues with `--resume RUN`."""

    data: Path = Path("data/two_rooms.h5")
    """A folder of images (PNG/JPEG), a folder of videos (MP4...; needs `ami[video]`), or an
    HDF5 episodes file from `ami collect`."""
    run: Path | None = None
    """Run directory to create; default runs/pretrain-<method>-<time>."""
    method: Literal["ijepa", "vjepa"] = "ijepa"
    """ijepa: multi-block masks on single frames; vjepa: tube masks on clips of --frames."""
    vit: ViTConfig = field(default_factory=ViTConfig)
    image_size: int = 0
    """Side the frames are resized to (centre crop first); 0: the episodes' own, 64 for
    folders."""
    channels: int = 0
    """Image channels (1 or 3); 0: the episodes' own, 3 for folders."""
    frames: int = 4
    """V-JEPA: frames per clip (a multiple of the tubelet)."""
    frame_stride: int = 1
    """V-JEPA: steps between a clip's frames."""
    collapse: Literal["ema", "sigreg"] = "ema"
    """ema: EMA target encoder, stop-gradient (I-JEPA/V-JEPA); sigreg: one encoder, SIGReg on each
    frame's mean target token, no EMA and no stop-gradient (LeJEPA)."""
    loss: Literal["l1", "smooth_l1"] = "l1"
    """Distance between predicted and target embeddings."""
    ema_start: float = 0.996
    """EMA momentum at the first step; it rises linearly to --ema-end."""
    ema_end: float = 1.0
    """EMA momentum at the last step."""
    sigreg_weight: float = 0.1
    """λ of SIGReg (collapse sigreg)."""
    sigreg_projections: int = 256
    """Random 1-D projections of SIGReg."""
    predictor_width: int = 32
    """Token width of the (narrow) predictor."""
    predictor_depth: int = 2
    """Transformer blocks of the predictor."""
    predictor_heads: int = 2
    """Attention heads of the predictor."""
    targets: int = 4
    """I-JEPA: target blocks per image."""
    target_scale: tuple[float, float] = (0.15, 0.2)
    """I-JEPA: share of the image each target block covers (range)."""
    target_aspect: tuple[float, float] = (0.75, 1.5)
    """Aspect ratio (height/width) of target blocks and tube blocks (range)."""
    context_scale: tuple[float, float] = (0.85, 1.0)
    """I-JEPA: share of the image of the context block, before the targets are removed."""
    allow_overlap: bool = False
    """I-JEPA: let the context keep tokens that are also targets."""
    tubes_small: tuple[int, float] = (8, 0.15)
    """V-JEPA: the first masking of each clip: this many spatial blocks of this scale."""
    tubes_large: tuple[int, float] = (2, 0.7)
    """V-JEPA: the second masking: this many blocks of this scale (0 blocks: none)."""
    steps: int = 2000
    """Optimisation steps."""
    batch_size: int = 64
    """Images or clips per step."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    weight_decay: float = 0.04
    """AdamW weight decay."""
    warmup: int = 100
    """Linear warm-up steps before cosine decay to 5 % of the peak."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this (0: off)."""
    device: str = "auto"
    """auto (cuda, then mps, then cpu), cpu, cuda or mps."""
    seed: int = 0
    """Random seed of initialisation, masks and sampling."""
    log_every: int = 50
    """Write metrics.jsonl every this many steps."""
    checkpoint_every: int = 250
    """Write a resumable checkpoint.safetensors (encoders, predictor, optimiser, RNG states)
    every this many steps."""
    resume: Path | None = None
    """Pretraining run directory to continue from its last checkpoint, with the run's own
    settings (`ami train --resume` continues a world model's)."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class FeatureProbeConfig:
    """Linear probes on frozen pretrained features: class labels (accuracy) or continuous
    targets (Pearson r, R²), scored on held-out images or episodes; by default also for the same
    ViT with random weights and for raw pixels."""

    encoder: Path = Path("runs/latest")
    """Run directory of `ami pretrain` (encoder.safetensors)."""
    data: Path = Path("data/two_rooms.h5")
    """A folder of images, or an HDF5 episodes file."""
    labels: str = "states"
    """A CSV file `file,label` for an image folder; `states` for the recorded states of
    episodes."""
    task: Literal["auto", "classify", "regress"] = "auto"
    """classify (accuracy) or regress (r, R²); auto: classify non-numeric or integer labels
    with at most 100 values, regress the rest (states are always regressed)."""
    frames: int = 0
    """Frames per sample from episodes: the scored frame and the ones before it, filling one
    tubelet; 0: the encoder's tubelet."""
    pool: Literal["mean", "tokens"] = "mean"
    """Features: the mean of the final tokens, or all tokens concatenated."""
    blocks: int = 1
    """Read the features from the last this many transformer blocks, side by side (each through
    the final LayerNorm); 1: the final block alone."""
    baselines: bool = True
    """Also probe the same ViT with random weights, and the raw pixels."""
    test_fraction: float = 0.25
    """Share of the images (or episodes) held out to score the probes."""
    max_samples: int = 5000
    """At most this many samples, drawn evenly over the images or episodes."""
    ridge: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    """L2 penalties to try, on standardised features; each feature set gets the one that scores
    best in 3-fold cross-validation on the training split."""
    seed: int = 0
    """Seed of the split, the subsample and the random-weights baseline."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class EfficiencyConfig:
    """JEPA against the generative (pixel-predicting) baseline at equal training budget — the
    same data, steps, batch and windows — then the same planner: one table of parameters,
    training FLOPs and kWh, success, ms and FLOPs per plan, and a plot."""

    benchmark: tyro.conf.Positional[Literal["efficiency"]] = "efficiency"
    """Which benchmark (`ami bench efficiency`)."""
    out: Path = Path("runs/efficiency")
    """Directory for the data, both runs, efficiency.json, efficiency.md and efficiency.png."""
    data: Path | None = None
    """Episodes to train both models on (a world with goals); default: collect --episodes
    Two-Rooms episodes into <out>/two_rooms.h5."""
    episodes: int = 400
    """Episodes to collect when --data is not given."""
    steps: int = 300
    """Training steps of each model (both: same batches of the same data; JEPA plans well
    from 300 on Two-Rooms)."""
    batch_size: int = 64
    """Windows per training step, for both models."""
    eval_episodes: int = 20
    """Evaluation episodes per model, planning in its latent (same seeds for both)."""
    budget: int = 0
    """Environment steps allowed per evaluation episode; 0: the world's (200 on Two-Rooms, 50
    on PushT)."""
    pixel_plans: int = 2
    """Plans timed and counted for the generative model planning in pixels (decoding every
    candidate's frames is slow on a CPU); its success is scored on --pixel-episodes."""
    pixel_episodes: int = 0
    """Evaluation episodes for the generative model planning in pixels (0: only time
    --pixel-plans plans)."""
    plan: PlanConfig = field(default_factory=PlanConfig)
    region: str = "world"
    """Grid region for the CO2 column (ami.energy.GRID_INTENSITY); the table adds the what-if
    of two regions."""
    seed: int = 0
    """Seed of collection and training."""
    progress: bool = True
    """Show progress bars."""


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
    """Rebuild a config dataclass from `to_dict`'s output (lists back to tuples where the field
    is a tuple); unknown keys are an error."""
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
        elif isinstance(default, tuple) and isinstance(value, list):  # JSON made it a list
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    for name, old in getattr(cls, "LEGACY_DEFAULTS", {}).items():
        kwargs.setdefault(name, old)
    return cls(**kwargs)
