"""Make gexnet's Snakemake profiles findable by name (`snakemake --profile NAME`).

Snakemake looks for a profile NAME in the current directory, then in the user's and the site's
config directories, never in profiles/. Linking the profile into the user's directory keeps one
copy: in a checkout (editable install) site values set in profiles/NAME are the ones used. With
`copy`, the user's directory gets a copy of its own to edit instead, which is what a
non-editable install needs (its profiles sit in site-packages, replaced on every upgrade).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from gexnet.errors import GexnetError

# Package data (the repository's profiles/ links here), so installed copies carry them too.
PROFILES = Path(__file__).resolve().parent / "data" / "profiles"


def user_profile_dir() -> Path:
    """Where Snakemake looks for profiles of this user (XDG_CONFIG_HOME respected)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "snakemake"


def install(name: str, force: bool = False, copy: bool = False) -> Iterator[str]:
    """Link (or copy) profile `name` into the user's Snakemake config directory."""
    source = PROFILES / name
    if not source.is_dir():
        known = ", ".join(sorted(p.name for p in PROFILES.iterdir() if p.is_dir()))
        raise GexnetError(f"no profile '{name}' in {PROFILES} (known: {known})")
    target = user_profile_dir() / name
    ours = target.is_symlink() and target.resolve() == source.resolve()
    if ours and not copy:
        yield f"{target} already points to {source}"
        return
    if ours:  # our link, to be replaced by a copy
        target.unlink()
    elif target.exists() or target.is_symlink():
        if target.is_dir() and not target.is_symlink():
            raise GexnetError(f"{target} is a profile directory of its own; move it away first")
        if not force:
            raise GexnetError(
                f"{target} exists and is not this repository's profile; "
                "rerun with --force to replace it"
            )
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copytree(source, target)
        yield f"{target}: a copy of {source}; set your site's values there"
    else:
        target.symlink_to(source, target_is_directory=True)
        yield f"{target} -> {source}"
    yield f"now: snakemake --profile {name}   (from the workflow's directory)"
