"""Evaluation of translators: FID and KID on InceptionV3 features, and a callback for training."""

from cyclegan_tf.evaluation.callback import FidCallback
from cyclegan_tf.evaluation.features import InceptionFeatures, build_inception, file_features
from cyclegan_tf.evaluation.metrics import Scores, fid, frechet_distance, kid, scores

__all__ = [
    "FidCallback",
    "InceptionFeatures",
    "Scores",
    "build_inception",
    "fid",
    "file_features",
    "frechet_distance",
    "kid",
    "scores",
]
