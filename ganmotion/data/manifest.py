"""The manifest that describes a directory of shards, and the shard URLs it lists.

A shard root is a local directory or an http(s) URL of one; both hold `manifest.json` and
the tars `{split}-{index:06d}.tar` it names.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from ganmotion.errors import GanmotionError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def _is_url(root: str) -> bool:
    return root.startswith(("http://", "https://"))


def load_manifest(root: str | os.PathLike) -> dict:
    """Read `manifest.json` of a shard root (directory or URL)."""
    root = str(root)
    location = f"{root.rstrip('/')}/{MANIFEST_NAME}"
    try:
        if _is_url(root):
            with urllib.request.urlopen(location, timeout=30) as response:
                text = response.read().decode()
        else:
            text = Path(location).read_text()
    except FileNotFoundError:
        raise GanmotionError(
            f"{location}: no such file (is {root} a prepared shard directory?)"
        ) from None
    except OSError as error:
        raise GanmotionError(f"{location}: cannot read ({error})") from error
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as error:
        raise GanmotionError(f"{location}: not valid JSON ({error})") from error
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise GanmotionError(
            f"{location}: manifest version {manifest.get('manifest_version')!r} is not "
            f"{MANIFEST_VERSION}; prepare the shards again with this ganmotion"
        )
    return manifest


def shard_urls(root: str | os.PathLike, split: str = "train") -> list[str]:
    """URLs (or paths) of the shards of one split, in order."""
    manifest = load_manifest(root)
    splits = manifest["splits"]
    if split not in splits or not splits[split]["shards"]:
        raise GanmotionError(
            f"{root}: has no '{split}' split (splits: {', '.join(splits) or 'none'})"
        )
    base = str(root).rstrip("/")
    urls = [f"{base}/{shard['name']}" for shard in splits[split]["shards"]]
    if not _is_url(base):  # a resampled stream would retry a missing shard forever
        for url in urls:
            if not Path(url).is_file():
                raise GanmotionError(f"{url}: listed in {MANIFEST_NAME} but does not exist")
    return urls
