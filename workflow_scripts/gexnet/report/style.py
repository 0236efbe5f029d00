"""One look for every figure: sizes for a journal column, a colour-blind-safe palette, small
sans-serif type, and atomic writes of the same figure as PDF and PNG (or SVG)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import matplotlib.pyplot as plt
from cycler import cycler

from gexnet.formats.io import atomic_path

# Widths in inches: one column (89 mm) and the full page width (183 mm) of a journal page.
COLUMN = 3.5
PAGE = 7.2

# Okabe–Ito colours, distinguishable with the common colour-vision deficiencies; grey for
# baselines and controls, so that methods keep the colours.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GREY = "#999999"
LIGHT = "#DDDDDD"

RC = {
    "font.family": "sans-serif",
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    "lines.linewidth": 1.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 300,  # the PNG at print resolution
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # text stays text (editable) in the PDF
}


@contextmanager
def house_style():
    """Draw inside this for the house look."""
    with plt.rc_context(RC):
        yield


def save(fig, *paths: str | os.PathLike) -> None:
    """Write a figure atomically to each path (the format its suffix names) and free it."""
    try:
        for path in paths:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=os.fspath(path).rsplit(".", 1)[-1])
    finally:
        plt.close(fig)
