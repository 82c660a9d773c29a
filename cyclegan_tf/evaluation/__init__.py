"""Evaluation of translators: FID and KID on InceptionV3 features."""

from cyclegan_tf.evaluation.metrics import Scores, fid, frechet_distance, kid, scores

__all__ = ["Scores", "fid", "frechet_distance", "kid", "scores"]
