"""The classifier op: what makes an ML Program a classifier (coremltools' ClassifierConfig)."""
from __future__ import annotations

import numpy as np

from coreml_reference.mlprogram.registry import register, scalar


@register("classify")
def classify(ctx, probabilities, classes):
    """The label of the highest probability, and {label: probability} (as MLModel.predict
    returns a classifier's two outputs)."""
    probs = np.asarray(probabilities, np.float64).reshape(-1)
    labels = [scalar(c) for c in classes]
    if len(labels) != probs.size:
        raise ctx.shape_error("{} classes for {} probabilities".format(len(labels), probs.size))
    return labels[int(np.argmax(probs))], dict(zip(labels, probs.tolist()))
