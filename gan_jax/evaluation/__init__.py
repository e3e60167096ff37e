"""Evaluation: sampling a trained state and every metric that scores it.

`evaluate.evaluate_state` is the one path from a state to its metrics; the
training loop's periodic evaluation and the `gan_jax.evaluate` command both
call it. The metrics themselves:

* `mixture_metrics`: modes and high-quality fraction on synthetic mixtures;
* `feature_metrics`: Fréchet distance, KID, precision/recall,
  density/coverage and classifier scores on any feature vectors;
* `image_evaluation`: those metrics on the committed reference classifiers
  (`classifier`, `classifier_weights/`), with the real-vs-real floor;
* `inception_metrics`: the standard FID/KID on the FID Inception-v3
  (`inception`, `inception_weights`).

Nothing here imports the training loop.
"""
