"""Make the repository's Snakemake profiles findable by name (`snakemake --profile NAME`).

Snakemake looks for a profile NAME in the current directory, then in the user's and the site's
config directories, never in profiles/. Linking profiles/NAME into the user's directory keeps one
copy: site values set in profiles/NAME are the ones used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from gexnet.errors import GexnetError

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def user_profile_dir() -> Path:
    """Where Snakemake looks for profiles of this user (XDG_CONFIG_HOME respected)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "snakemake"


def install(name: str, force: bool = False) -> Iterator[str]:
    """Link profiles/<name> into the user's Snakemake config directory."""
    source = PROFILES / name
    if not source.is_dir():
        known = ", ".join(sorted(p.name for p in PROFILES.iterdir() if p.is_dir()))
        raise GexnetError(f"no profile '{name}' in {PROFILES} (known: {known})")
    target = user_profile_dir() / name
    if target.is_symlink() and target.resolve() == source.resolve():
        yield f"{target} already points to {source}"
        return
    if target.exists() or target.is_symlink():
        if target.is_dir() and not target.is_symlink():
            raise GexnetError(f"{target} is a profile directory of its own; move it away first")
        if not force:
            raise GexnetError(
                f"{target} exists and is not this repository's profile; "
                "rerun with --force to replace it"
            )
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source, target_is_directory=True)
    yield f"{target} -> {source}"
    yield f"now: snakemake --profile {name}   (from {PROFILES.parent})"
