"""Evaluation of translators: FID and KID on InceptionV3 features, and a callback for training."""

from cyclegan_tf.evaluation.callback import FidCallback
from cyclegan_tf.evaluation.evaluate import SPLITS, evaluate
from cyclegan_tf.evaluation.features import InceptionFeatures, build_inception, file_features
from cyclegan_tf.evaluation.metrics import Scores, fid, frechet_distance, kid, scores

__all__ = [
    "FidCallback",
    "SPLITS",
    "InceptionFeatures",
    "Scores",
    "build_inception",
    "evaluate",
    "fid",
    "file_features",
    "frechet_distance",
    "kid",
    "scores",
]
