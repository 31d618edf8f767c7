"""Generation profiles of the procedural dataset (``tiny``, ``small``, ``davis``) and overrides."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from vosbench.errors import ConfigError

SPLITS = ("train", "val", "test-dev")


@dataclass(frozen=True)
class SyntheticProfile:
    """What one profile generates: split sizes, frame counts, frame size and scene difficulty."""

    name: str
    videos: dict[str, int]  # split -> number of videos (0 = split not written)
    frames: tuple[int, int]  # inclusive range of frames per video
    size: tuple[int, int]  # (height, width)
    lookalike: float = 0.4  # share of videos (per split) with look-alike annotated objects
    max_objects: int = 5
    jpeg_quality: int = 85
    texture_size: int = 64  # side of an object's texture patch, pixels

    @property
    def total_videos(self) -> int:
        return sum(self.videos.values())


PROFILES: dict[str, SyntheticProfile] = {
    "tiny": SyntheticProfile(
        name="tiny", videos={"train": 3, "val": 2, "test-dev": 1}, frames=(8, 8), size=(96, 160),
        lookalike=0.5, max_objects=3, texture_size=32,
    ),
    "small": SyntheticProfile(
        name="small", videos={"train": 100, "val": 30, "test-dev": 10}, frames=(30, 50), size=(240, 432),
        lookalike=0.4, max_objects=5, texture_size=64,
    ),
    "davis": SyntheticProfile(
        name="davis", videos={"train": 0, "val": 30, "test-dev": 0}, frames=(60, 80), size=(480, 854),
        lookalike=0.4, max_objects=5, texture_size=128,
    ),
}


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"HxW"`` (e.g. ``240x432``) into ``(height, width)``; ConfigError when malformed."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"bad size {text!r}: expected HxW, e.g. 240x432")
    return int(m.group(1)), int(m.group(2))


def resolve_profile(
    profile: str | SyntheticProfile,
    *,
    lookalike: float | None = None,
    videos: int | None = None,
    frames: int | None = None,
    size: tuple[int, int] | str | None = None,
) -> SyntheticProfile:
    """A profile with the command-line overrides applied and checked.

    ``videos`` is the total number of videos; it is shared between the profile's splits in the
    profile's proportions (every split the profile writes keeps at least one video).
    ``frames`` fixes every video's length.
    """
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
        prof = PROFILES[profile]
    else:
        prof = profile
    if lookalike is not None:
        if not 0.0 <= lookalike <= 1.0:
            raise ConfigError(f"--lookalike must lie in [0, 1], got {lookalike}")
        prof = replace(prof, lookalike=float(lookalike))
    if videos is not None:
        prof = replace(prof, videos=_share_videos(prof.videos, videos))
    if frames is not None:
        if frames < 3 or frames > 10000:
            raise ConfigError(f"--frames must lie in 3..10000, got {frames}")
        prof = replace(prof, frames=(frames, frames))
    if size is not None:
        h, w = parse_size(size) if isinstance(size, str) else (int(size[0]), int(size[1]))
        if h < 32 or w < 32 or h > 4096 or w > 4096:
            raise ConfigError(f"--size {h}x{w} out of range: height and width must lie in 32..4096")
        prof = replace(prof, size=(h, w))
    return prof


def _share_videos(videos: dict[str, int], total: int) -> dict[str, int]:
    if total < 1 or total > 100000:
        raise ConfigError(f"--videos must lie in 1..100000, got {total}")
    active = [s for s in SPLITS if videos.get(s, 0) > 0]
    base = sum(videos[s] for s in active)
    if total < len(active):  # too few to give every split one: fill splits in order
        return {s: (1 if i < total else 0) for i, s in enumerate(active)} | {
            s: 0 for s in SPLITS if s not in active
        }
    out = {s: max(1, round(total * videos[s] / base)) for s in active}
    # fix rounding so the total is exact: adjust the largest split
    largest = max(active, key=lambda s: out[s])
    out[largest] += total - sum(out.values())
    return out | {s: 0 for s in SPLITS if s not in active}
