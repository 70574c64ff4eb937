"""PAI's evaluation script (pai-compat §8.2-8.3), transcribed as literally as possible.

Only the I/O is taken out: the tag file is a dict, features are arrays, the GPU product is a
NumPy one. The tests compare mmdm's evaluation with this on the same inputs.
"""

from __future__ import annotations

import numpy as np


def precision_at_k(predictions, gts, k):
    if len(predictions) > k:
        predictions = predictions[:k]
    predicted_ids = {p[0] for p in predictions}
    relevant_and_retrieved = predicted_ids.intersection(gts)
    precision = len(relevant_and_retrieved) / k
    return precision


def sorted_predictions(image_ids, image_feats_array, text_feat):
    scores = (np.asarray(text_feat, dtype=np.float32) @ image_feats_array.T).tolist()
    score_tuples = list(zip(image_ids, scores))
    return sorted(score_tuples, key=lambda x: x[1], reverse=True)


def seed_precisions(tag_dict, predictions_by_tag):
    """The script's scoring loop: (mean per k or None where the script prints nan, log)."""
    top_k_list = [1, 5, 10, 50, 100]
    top_k_list_precision = [[] for _ in top_k_list]
    log = []
    for tag, gts in tag_dict.items():
        predictions = predictions_by_tag[tag]
        for top_k_id, k in enumerate(top_k_list):
            need_exit = False
            if k > len(gts):
                k = len(gts)
                need_exit = True
            prec = precision_at_k(predictions, gts, k)
            log.append((tag, len(gts), k, prec))
            if need_exit:
                break
            else:
                top_k_list_precision[top_k_id].append(prec)
    means = {k: (float(np.mean(v)) if v else None) for k, v in zip(top_k_list,
                                                                    top_k_list_precision)}
    return means, log
