"""How far each SIREN fitting recipe moves the weights from their init, and the PSNR it buys.

Fits the same stand-in digits (MNIST) or glyphs (F-MNIST) from independent DWS inits with each
recipe and prints one JSON line per recipe: mean/min PSNR, mean steps taken, seconds, and the
per-layer weight and bias stds beside the real MNIST-INR zoo's (datasets.md §6.3). The shipped
recipe is ``shipped_1000`` on images anti-aliased as shipped; ``--anti-alias 0`` fits the
unblurred images. The README's "Stand-ins" table comes from this script.

    python benchmarks/fit_recipes.py [--n 96] [--images mnist|fmnist] [--seed 0] [--anti-alias S]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from scalegmn.data.standins import images as img
from scalegmn.data.standins.inr_zoos import REAL_INR_STATS, fit_inr_zoo, mnist_inr_recipe
from scalegmn.data.standins.siren_fit import FitRecipe, init_dws, psnr
from scalegmn.weightspace.network import dws_siren_spec

RECIPES = {
    "shipped_1000": mnist_inr_recipe(1000),
    # DWS's own rate on every layer
    "dws_1000": FitRecipe(steps=1000, lr=5e-4, target_psnr=40.0),
    "dws_3000": FitRecipe(steps=3000, lr=5e-4, target_psnr=40.0),
    # the previous default: fast, far from the init
    "fast_500": FitRecipe(steps=500, lr=1e-2, first_layer_lr=3e-2, beta2=0.99,
                          final_lr_fraction=0.01, target_psnr=40.0),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="INRs per recipe")
    parser.add_argument("--images", choices=("mnist", "fmnist"), default="mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anti-alias", type=float, default=img.ANTI_ALIAS_SIGMA,
                        help="Gaussian blur of the images in pixels (0: none)")
    parser.add_argument("recipes", nargs="*", default=list(RECIPES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.recipes:
        gen = torch.Generator().manual_seed(args.seed)
        draw = img.digit_images if args.images == "mnist" else img.glyph_images
        images, _ = draw(args.n, gen, blur=args.anti_alias)
        targets = img.to_unit(images).unsqueeze(1)
        start = time.perf_counter()
        zoo, taken = fit_inr_zoo(init_dws, dws_siren_spec(), targets, draws=0,
                                  recipe=RECIPES[name], peak=1.0, gen=gen, label=name)
        seconds = time.perf_counter() - start
        values = psnr(zoo, targets, (0.0, 1.0))
        print(json.dumps({
            "recipe": name, "images": args.images, "anti_alias": args.anti_alias, "n": args.n,
            "psnr_mean": round(float(values.mean()), 2), "psnr_min": round(float(values.min()), 2),
            "steps_mean": round(float(taken.double().mean()), 1),
            "seconds_per_inr": round(seconds / args.n, 3),
            "weight_std": [round(float(w.std()), 4) for w in zoo.weights],
            "bias_std": [round(float(b.std()), 4) for b in zoo.biases],
            "real": REAL_INR_STATS["dws_mnist"],
            "capability": torch.backends.cpu.get_cpu_capability(),
        }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
