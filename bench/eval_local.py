"""Precision@k of the offline local model on a generated colour/brightness labelled set.

Generates ``8 x --per-hue`` small images (a hue name and dark/bright as tags) in a temporary
folder, evaluates the local model with image queries (each tag's query is the mean of its first
``--exemplars`` ground-truth images, which are then left out of its ranking and ground truth)
and prints the Precision@k table, the figure a random ranking would get, and the time taken.

    python bench/eval_local.py                  # 208 images, seed 0
    python bench/eval_local.py --per-hue 13 --seed 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdm.adapters.evaluation import evaluate_embedding, write_synthetic_set  # noqa: E402
from mmdm.adapters.models import LocalImageEmbedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-hue", type=int, default=26, help="images per hue (8 hues)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exemplars", type=int, default=3, help="query images per tag")
    parser.add_argument("--dimension", type=int, default=None, help="local model dimension")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mmdm-eval-") as folder:
        made = write_synthetic_set(folder, per_hue=args.per_hue, seed=args.seed)
        started = time.perf_counter()
        result = evaluate_embedding(folder, LocalImageEmbedder(args.dimension),
                                    exemplars_per_tag=args.exemplars)
        elapsed = time.perf_counter() - started

    print(f"{made['images']} generated images, {made['tags']} tags, seed {args.seed}, "
          f"{args.exemplars} exemplars per tag")
    print(result.table())
    # A random ranking's expected P@k for a tag is the tag's share of the images it ranks;
    # averaged over the tags each column counts, it is the baseline for that column.
    share = {r.tag: r.score.n_gt / (result.images_ranked - len(r.exemplars))
             for r in result.tags}
    for k in result.ks:
        counted = [share[r.tag] for r in result.tags if k in r.score.counted]
        if counted:
            print(f"random ranking @{k}: {sum(counted) / len(counted):.4f}")
    print("per tag: " + ", ".join(
        f"{r.tag} n={r.score.n_gt} " + "/".join(f"{v:.2f}" for v in r.score.counted.values())
        for r in result.tags))
    print(f"evaluated in {elapsed:.2f} s ({made['images'] / elapsed:.0f} images/s)")


if __name__ == "__main__":
    main()
