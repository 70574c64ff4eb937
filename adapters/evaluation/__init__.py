"""Embedding-model evaluation: Precision@k on a labelled set, as PAI's evaluation script does.

``evaluate_embedding(data_dir, embedder)`` reads ``dataset.jsonl`` + ``images/``, embeds every
image and every distinct tag (or, for an image-only model, builds each tag's query from
exemplar images), ranks the images per tag and returns the Precision@k table, the per-tag
report and the items it had to leave out. No Airflow here.
"""

from __future__ import annotations

from .embedding import Calls
from .evaluate import QUERY_MODES, evaluate_embedding
from .feature_cache import FeatureCache, model_key
from .labelled_set import (
    DATASET_FILE,
    EXEMPLARS_FILE,
    IMAGE_EXTENSIONS,
    IMAGES_DIR,
    LabelledSet,
    find_image_file,
    image_key,
    read_labelled_set,
)
from .precision import K_VALUES, TagScore, mean_precision, precision_at_k, score_tag
from .queries import DEFAULT_EXEMPLARS_PER_TAG
from .result import EvaluationResult, Problem, TagReport
from .synthetic import write_synthetic_set

__all__ = [
    "DATASET_FILE", "DEFAULT_EXEMPLARS_PER_TAG", "EXEMPLARS_FILE", "IMAGES_DIR",
    "IMAGE_EXTENSIONS", "K_VALUES", "QUERY_MODES", "Calls", "EvaluationResult", "FeatureCache",
    "LabelledSet", "Problem", "TagReport", "TagScore", "evaluate_embedding", "find_image_file",
    "image_key", "mean_precision", "model_key", "precision_at_k", "read_labelled_set",
    "score_tag", "write_synthetic_set",
]
