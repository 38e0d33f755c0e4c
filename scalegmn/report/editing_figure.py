"""Table 3's figure: test INRs before and after each row's learned edit."""

from __future__ import annotations

import torch

from scalegmn.data.cache import load_split
from scalegmn.train.checkpoint import load_checkpoint
from scalegmn.train.editing import IMAGE_SHAPE, apply_delta, dilate, source_images
from scalegmn.weightspace.functional import render


def examples_figure(table, checkpoints: list[str], stores: list[str], n_examples: int = 4):
    """A drawer ``draw(path)`` of test INRs: original, dilated target, and each model's edit.

    ``checkpoints`` are the best.pt of one seed per row (in row order, first column's view).
    """

    def draw(path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        split = load_split(stores[0])
        idx = torch.arange(min(n_examples, split.size))
        batch = split.get(idx)
        originals = source_images(batch.net, getattr(split, "images", None), batch.index)
        panels = [("before (INR)", render(batch.net, IMAGE_SHAPE)), ("target (dilated)", dilate(originals))]
        for row, ckpt in zip(table.rows, checkpoints, strict=False):
            model, _ = load_checkpoint(ckpt)
            with torch.no_grad():
                dw, db = model(batch)
                panels.append((row.label, render(apply_delta(batch.net, dw, db), IMAGE_SHAPE)))
        fig, axes = plt.subplots(len(panels), len(idx), figsize=(1.3 * len(idx), 1.35 * len(panels)), squeeze=False)
        for r, (label, imgs) in enumerate(panels):
            for c in range(len(idx)):
                ax = axes[r][c]
                ax.imshow(imgs[c, 0].detach().cpu().clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[r][0].set_ylabel(label, fontsize=7)
        fig.suptitle(f"{table.name}: test INRs before and after the learned edit", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    return draw
