"""Meta-learners as LightningModules: MAML (and first-order, ANIL, MAML++), Reptile, Prototypical Networks."""

from lightning_meta.learners.base import MetaLearner
from lightning_meta.learners.maml import MAML
from lightning_meta.learners.prediction import TaskPrediction, load_learner
from lightning_meta.learners.protonet import ProtoNet
from lightning_meta.learners.reptile import Reptile

__all__ = ["MAML", "MetaLearner", "ProtoNet", "Reptile", "TaskPrediction", "load_learner"]
