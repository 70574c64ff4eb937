"""The offline local model: pixel-statistics tags and a hand-made image descriptor.

Needs no key, no download and no GPU, so mmdm works out of the box and tests run offline.
Both parts are honest about what they are: the tagger reports measurable properties of the
pixels (exposure, contrast, sharpness, colour, size, orientation), never scene content; the
embedder's vectors find the same or a similar-looking image (near duplicates, recompressed or
resized copies), not images about the same thing, and cannot embed text.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import AdapterError, ConfigError, NotSupportedError
from .base import ImageInput, TagDefinition, TagResult, l2_normalise
from .tagging_prompt import normalise_tag_name

# ---- Tag thresholds. Luminance is Rec. 601 luma (0.299 R + 0.587 G + 0.114 B) on 0..255. ----
# Statistics are taken on a copy whose longer side is at most this, so cost does not grow with
# the file and a 24-megapixel photo is judged as it looks on screen.
STATS_SIDE = 256
# Over-exposed: at least this share of pixels is blown out (luma >= HIGHLIGHT_LUMA). Snow and
# white walls sit around 200-235; only clipped highlights reach 245.
HIGHLIGHT_LUMA = 245
OVEREXPOSED_SHARE = 0.30
# Under-exposed: at least this share is crushed black (luma <= SHADOW_LUMA), or the whole
# image is dark on average (a night shot with a few lights still counts).
SHADOW_LUMA = 20
UNDEREXPOSED_SHARE = 0.50
UNDEREXPOSED_MEAN_LUMA = 40.0
# Low contrast: RMS contrast (standard deviation of luma) below this. Fog, haze, a flat wall.
LOW_CONTRAST_STD = 18.0
# Blurry: variance of the 4-neighbour Laplacian of luma, on a copy whose longer side is at most
# SHARPNESS_SIDE, below this (the usual 100 of the variance-of-Laplacian method). Judged only
# when the image has contrast: a flat image has no edges to be sharp or soft, and is reported
# as low contrast instead.
SHARPNESS_SIDE = 512
BLURRY_LAPLACIAN_VAR = 100.0
# Grayscale: the 99th percentile of chroma (max minus min channel) is at most this, which
# tolerates JPEG colour noise on a black-and-white photo but not a sepia tint.
GRAYSCALE_CHROMA = 12.0
# Tiny: the shorter side, after EXIF rotation, is below this many pixels.
TINY_SIDE = 64
# Square when the sides differ by at most this fraction; otherwise landscape or portrait.
SQUARE_TOLERANCE = 0.05
# Colour tags: share of all pixels that are saturated (HSV S >= COLOUR_MIN_SATURATION and
# V >= COLOUR_MIN_VALUE) with a hue in the colour's range. Several colours can qualify.
COLOUR_MIN_SATURATION = 0.35
COLOUR_MIN_VALUE = 0.25
DOMINANT_COLOUR_SHARE = 0.25
# Hue ranges in degrees, [start, end); red wraps around 0.
COLOUR_HUES: dict[str, tuple[float, float]] = {
    "red": (345.0, 15.0),
    "orange": (15.0, 40.0),
    "yellow": (40.0, 70.0),
    "green": (70.0, 165.0),
    "cyan": (165.0, 195.0),
    "blue": (195.0, 255.0),
    "purple": (255.0, 290.0),
    "pink": (290.0, 345.0),
}

LOCAL_TAG_DEFINITION = TagDefinition(
    guide_prompt="Pixel statistics computed by mmdm's offline local model; no scene content.",
    tags={
        "over-exposed": f"At least {OVEREXPOSED_SHARE:.0%} of pixels have luma >= "
                        f"{HIGHLIGHT_LUMA} (clipped highlights).",
        "under-exposed": f"At least {UNDEREXPOSED_SHARE:.0%} of pixels have luma <= "
                         f"{SHADOW_LUMA}, or the mean luma is below {UNDEREXPOSED_MEAN_LUMA:g}.",
        "low contrast": f"Standard deviation of luma below {LOW_CONTRAST_STD:g} (of 255).",
        "blurry": f"Variance of the Laplacian of luma below {BLURRY_LAPLACIAN_VAR:g} at "
                  f"<= {SHARPNESS_SIDE} px, in an image that is not low contrast.",
        "grayscale": f"99th percentile of chroma (max - min channel) <= {GRAYSCALE_CHROMA:g}.",
        "tiny": f"Shorter side below {TINY_SIDE} px.",
        "landscape": f"Wider than tall by more than {SQUARE_TOLERANCE:.0%}.",
        "portrait": f"Taller than wide by more than {SQUARE_TOLERANCE:.0%}.",
        "square": f"Sides within {SQUARE_TOLERANCE:.0%} of each other.",
        **{name: f"At least {DOMINANT_COLOUR_SHARE:.0%} of pixels are saturated with a hue "
                 f"in [{lo:g}, {hi:g}) degrees." for name, (lo, hi) in COLOUR_HUES.items()},
    },
)

# Other names a user's definition may use for these tags (matched after normalise_tag_name).
TAG_ALIASES: dict[str, tuple[str, ...]] = {
    "over-exposed": ("overexposed", "overexposure", "过曝", "曝光过度"),
    "under-exposed": ("underexposed", "underexposure", "欠曝", "曝光不足"),
    "low contrast": ("low-contrast", "低对比度"),
    "blurry": ("blur", "blurred", "模糊"),
    "grayscale": ("greyscale", "black and white", "monochrome", "灰度", "黑白"),
    "tiny": ("small image", "小图"),
    "landscape": ("horizontal", "横图"),
    "portrait": ("vertical", "竖图"),
    "square": ("方图",),
    "red": ("红色",), "orange": ("橙色",), "yellow": ("黄色",), "green": ("绿色",),
    "cyan": ("青色",), "blue": ("蓝色",), "purple": ("紫色",), "pink": ("粉色",),
}


def decode_rgb(image: ImageInput, *, fit: int) -> tuple[Image.Image, tuple[int, int]]:
    """The image upright and in RGB, shrunk to fit ``fit`` px, and its full upright size.

    Transparent pixels are laid on white, as viewers show them. JPEGs are decoded at a reduced
    scale directly (``draft``), which makes large photos cheap.

    Raises:
        AdapterError: (input error) no bytes, or bytes that are not a readable image.
    """
    if image.data is None:
        raise AdapterError(f"{image.uri}: the local model needs the image bytes",
                           is_input_error=True)
    try:
        im = Image.open(io.BytesIO(image.data))
        width, height = im.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:  # checked here: Pillow only warns below 2x
            raise AdapterError(f"{image.uri}: {width}x{height} px is more than the "
                               f"{limit} px the decoder allows", is_input_error=True)
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated a quarter turn
            width, height = height, width
        if im.format == "JPEG":
            im.draft("RGB", (fit, fit))
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        raise AdapterError(f"{image.uri}: not a readable image ({type(exc).__name__})",
                           is_input_error=True) from None
    if max(im.size) > fit:
        im.thumbnail((fit, fit), Image.Resampling.BOX)
    return im, (width, height)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _laplacian_variance(luma: np.ndarray) -> float:
    if min(luma.shape) < 3:
        return 0.0
    lap = (luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
           - 4.0 * luma[1:-1, 1:-1])
    return float(lap.var())


def measure(image: ImageInput) -> dict[str, float | int]:
    """The pixel statistics the local tags are decided on (also kept as the result's raw)."""
    sharp_im, (width, height) = decode_rgb(image, fit=SHARPNESS_SIDE)
    stats_im = sharp_im.copy()
    stats_im.thumbnail((STATS_SIDE, STATS_SIDE), Image.Resampling.BOX)
    rgb = np.asarray(stats_im, dtype=np.float32)
    luma = _luma(rgb)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Element-wise max/min: numpy's reduction over a length-3 last axis is ~30x slower.
    chroma = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    hsv = np.asarray(stats_im.convert("HSV"), dtype=np.float32) / 255.0
    saturated = (hsv[..., 1] >= COLOUR_MIN_SATURATION) & (hsv[..., 2] >= COLOUR_MIN_VALUE)
    hue = hsv[..., 0] * 360.0
    stats: dict[str, float | int] = {
        "width": width,
        "height": height,
        "mean_luma": round(float(luma.mean()), 2),
        "luma_std": round(float(luma.std()), 2),
        "highlight_share": round(np.count_nonzero(luma >= HIGHLIGHT_LUMA) / luma.size, 4),
        "shadow_share": round(np.count_nonzero(luma <= SHADOW_LUMA) / luma.size, 4),
        "chroma_p99": round(float(np.percentile(chroma, 99)), 2),
        "laplacian_var": round(_laplacian_variance(
            _luma(np.asarray(sharp_im, dtype=np.float32))), 2),
    }
    hue = hue[saturated]  # count_nonzero on the few saturated pixels, not means over all
    for name, (lo, hi) in COLOUR_HUES.items():
        in_range = (hue >= lo) | (hue < hi) if lo > hi else (hue >= lo) & (hue < hi)
        stats[f"share_{name}"] = round(np.count_nonzero(in_range) / luma.size, 4)
    return stats


def local_tags(stats: dict[str, float | int]) -> list[str]:
    """The names of LOCAL_TAG_DEFINITION that the statistics satisfy, in its order."""
    width, height = int(stats["width"]), int(stats["height"])
    low_contrast = stats["luma_std"] < LOW_CONTRAST_STD
    found = {
        "over-exposed": stats["highlight_share"] >= OVEREXPOSED_SHARE,
        "under-exposed": (stats["shadow_share"] >= UNDEREXPOSED_SHARE
                          or stats["mean_luma"] < UNDEREXPOSED_MEAN_LUMA),
        "low contrast": low_contrast,
        "blurry": not low_contrast and stats["laplacian_var"] < BLURRY_LAPLACIAN_VAR,
        "grayscale": stats["chroma_p99"] <= GRAYSCALE_CHROMA,
        "tiny": min(width, height) < TINY_SIDE,
        "square": abs(width - height) <= SQUARE_TOLERANCE * max(width, height),
    }
    found["landscape"] = not found["square"] and width > height
    found["portrait"] = not found["square"] and height > width
    for name in COLOUR_HUES:
        found[name] = stats[f"share_{name}"] >= DOMINANT_COLOUR_SHARE
    return [name for name in LOCAL_TAG_DEFINITION.tags if found[name]]


@lru_cache(maxsize=64)
def _definition_names(names: tuple[str, ...]) -> dict[str, str]:
    """Local tag -> the name a user's definition gives it (the first one, if several)."""
    lookup: dict[str, str] = {}
    for local_name in LOCAL_TAG_DEFINITION.tags:
        for alias in (local_name, *TAG_ALIASES.get(local_name, ())):
            lookup.setdefault(normalise_tag_name(alias), local_name)
    chosen: dict[str, str] = {}
    for name in names:
        local_name = lookup.get(normalise_tag_name(name))
        if local_name is not None:
            chosen.setdefault(local_name, name)
    return chosen


def _describe(stats: dict[str, float | int], tags: list[str]) -> str:
    shape = next((t for t in ("landscape", "portrait", "square") if t in tags), "")
    kind = "grayscale" if "grayscale" in tags else "colour"
    colours = [t for t in COLOUR_HUES if t in tags]
    quality = [t for t in ("over-exposed", "under-exposed", "low contrast", "blurry")
               if t in tags]
    parts = [f"A {stats['width']}x{stats['height']} {shape} {kind} image"]
    if colours:
        parts.append("mostly " + " and ".join(colours))
    parts.append(", ".join(quality) if quality else "well exposed and sharp")
    return "; ".join(parts) + f" (mean brightness {float(stats['mean_luma']) / 255:.0%})."


class LocalPixelTagger:
    """Tags from pixel statistics; reports only the tags the given definition names.

    Use ``LOCAL_TAG_DEFINITION`` (or any subset, or the aliases in ``TAG_ALIASES``) as the
    definition; names it cannot measure are never reported.
    """

    model = "local-pixel-v1"

    def __repr__(self) -> str:
        return "LocalPixelTagger()"

    def tag(self, image: ImageInput, definition: TagDefinition, *, describe: bool = False
            ) -> TagResult:
        stats = measure(image)
        tags = local_tags(stats)
        names = _definition_names(tuple(definition.tags))
        reported = {names[t] for t in tags if t in names}
        return TagResult(
            tags=[name for name in definition.tags if name in reported],
            description=_describe(stats, tags) if describe else None,
            keywords=tags[:5] if describe else [],
            raw=json.dumps(stats, sort_keys=True),
        )


# ---- Descriptor layout: block name -> size. Each block is L2-normalised, then weighted. ----
DESCRIPTOR_SIDE = 64  # every image is resampled to this square before the blocks are taken
_BLOCKS: dict[str, tuple[int, float]] = {
    # Weights favour the structure blocks: recompression and brightness changes shift colour
    # statistics more than they move the coarse luma pattern.
    "rgb_histogram": (64, 0.7),  # 4x4x4 joint RGB bins, Hellinger (square-rooted) shares
    "layout": (48, 1.0),  # mean RGB on a 4x4 grid minus the image's mean: where colours are
    "thumbnail": (64, 1.5),  # 8x8 luma minus its mean: the coarse structure
    "gradients": (40, 0.5),  # 8 orientation bins, magnitude-weighted, per 2x2 cell + whole
    "edge_density": (16, 0.5),  # mean gradient magnitude on a 4x4 grid
    "hue_histogram": (24, 0.7),  # 15-degree hue bins weighted by saturation x value
}
NATURAL_DIMENSION = sum(size for size, _ in _BLOCKS.values())  # 256
_PROJECTION_SEED = 20240917  # fixed: the same dimension must give the same vectors forever


def _unit(block: np.ndarray, weight: float) -> np.ndarray:
    norm = float(np.linalg.norm(block))
    return (block / norm * weight if norm > 0 else block).astype(np.float32)


def _grid_means(values: np.ndarray, cells: int) -> np.ndarray:
    h, w = values.shape[:2]
    shaped = values.reshape(cells, h // cells, cells, w // cells, *values.shape[2:])
    return shaped.mean(axis=(1, 3))


def image_descriptor(im: Image.Image) -> np.ndarray:
    """The natural 256-value descriptor of an RGB image (before the final normalisation)."""
    side = DESCRIPTOR_SIDE
    small = im.resize((side, side), Image.Resampling.BOX) if im.size != (side, side) else im
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    luma = _luma(rgb)

    bins = np.minimum((rgb * 4).astype(np.int32), 3)
    joint = bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]
    rgb_hist = np.sqrt(np.bincount(joint.ravel(), minlength=64) / joint.size)

    grid = _grid_means(rgb, 4)
    layout = (grid - grid.mean(axis=(0, 1))).ravel()
    thumb = _grid_means(luma, 8).ravel()
    thumb = thumb - thumb.mean()

    gy, gx = np.gradient(luma)
    magnitude = np.hypot(gx, gy)
    orientation = ((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * 8).astype(np.int32) % 8
    half = side // 2
    cells = [(slice(0, half), slice(0, half)), (slice(0, half), slice(half, side)),
             (slice(half, side), slice(0, half)), (slice(half, side), slice(half, side)),
             (slice(0, side), slice(0, side))]
    gradients = np.concatenate([
        np.bincount(orientation[c].ravel(), weights=magnitude[c].ravel(), minlength=8)
        for c in cells])
    edge_density = _grid_means(magnitude, 4).ravel()

    hsv = np.asarray(small.convert("HSV"), dtype=np.float32) / 255.0
    hue_bins = np.minimum((hsv[..., 0] * 24).astype(np.int32), 23)
    hue_hist = np.bincount(hue_bins.ravel(), weights=(hsv[..., 1] * hsv[..., 2]).ravel(),
                           minlength=24)

    blocks = {"rgb_histogram": rgb_hist, "layout": layout, "thumbnail": thumb,
              "gradients": gradients, "edge_density": edge_density, "hue_histogram": hue_hist}
    return np.concatenate([_unit(blocks[name], weight)
                           for name, (_, weight) in _BLOCKS.items()])


class LocalImageEmbedder:
    """Deterministic, non-learned image vectors for image-to-image and near-duplicate search.

    ``dimension`` other than 256 pads with zeros (larger) or applies a fixed seeded random
    projection (smaller), which keeps cosine similarities approximately.
    """

    model = "local-descriptor-v1"
    supports_text = False
    max_batch = 64  # no service limit; the size of the chunks a job hands over at once

    def __init__(self, dimension: int | None = None):
        self.dimension = int(dimension) if dimension is not None else NATURAL_DIMENSION
        if self.dimension < 8:
            raise ConfigError(f"the local embedder needs at least 8 dimensions, not {dimension}")
        self._projection = None
        if self.dimension < NATURAL_DIMENSION:
            rng = np.random.default_rng(_PROJECTION_SEED)
            self._projection = (rng.standard_normal((NATURAL_DIMENSION, self.dimension))
                                / np.sqrt(self.dimension)).astype(np.float32)

    def __repr__(self) -> str:
        return f"LocalImageEmbedder(dimension={self.dimension})"

    def embed_images(self, images: list[ImageInput]) -> list[np.ndarray | Exception]:
        results: list[np.ndarray | Exception] = []
        for image in images:
            try:
                im, _ = decode_rgb(image, fit=DESCRIPTOR_SIDE)
            except AdapterError as exc:
                results.append(exc)
                continue
            results.append(self._shape(image_descriptor(im)))
        return results

    def embed_texts(self, texts: list[str]) -> list[np.ndarray]:
        raise NotSupportedError(
            "the local model cannot embed text: its vectors describe pixels, not meaning. "
            "For text search, configure a DashScope or EAS (GME) embedding connection.")

    def _shape(self, vector: np.ndarray) -> np.ndarray:
        if self._projection is not None:
            vector = vector @ self._projection
        elif self.dimension > NATURAL_DIMENSION:
            vector = np.pad(vector, (0, self.dimension - NATURAL_DIMENSION))
        return l2_normalise(vector)
