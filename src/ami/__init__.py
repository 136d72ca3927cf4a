"""ami: objective-driven AI with a JEPA world model — learn from pixels, plan in latent space.

Each `ami` subcommand is a function here taking the same options as a config dataclass:

    from ami import CollectConfig, TrainConfig, EvalConfig, collect, train, evaluate
    data = collect(CollectConfig(out="data/two_rooms.h5"))
    run = train(TrainConfig(data=data))
    print(evaluate(EvalConfig(run=run))["success_rate"])
"""

from ami.config import (
    BallisticConfig,
    CollectConfig,
    DemoConfig,
    EvalConfig,
    ModelConfig,
    PlanConfig,
    ProbeConfig,
    SurpriseConfig,
    TrainConfig,
)
from ami.data.collect import collect
from ami.demo import demo
from ami.evaluate.planning import evaluate
from ami.evaluate.probes import probe
from ami.evaluate.surprise import surprise
from ami.io import load_model
from ami.presets import preset
from ami.train import train

__version__ = "0.1.0"
__all__ = [
    "BallisticConfig", "CollectConfig", "DemoConfig", "EvalConfig", "ModelConfig", "PlanConfig",
    "ProbeConfig", "SurpriseConfig", "TrainConfig",
    "collect", "demo", "evaluate", "load_model", "preset", "probe", "surprise", "train",
]
