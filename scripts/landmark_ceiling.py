#!/usr/bin/env python3
"""How well can any registration do on a landmark pair? Three ceilings, in median rTRE.

    python scripts/landmark_ceiling.py [--data ../shared/data] [--field-root DIR]

Run it with the peers' Python (numpy, scipy, opencv), e.g. /work/peers-venv/bin/python.
For every pair in <data>/{anhir_birl,cima_lung_lesion3}/pairs.csv it prints:

  before          the landmarks as they are (u = 0)
  affine fit      the least-squares affine from the target to the source landmarks, fitted on
                  all of them (it has seen the landmark it is scored on)
  LOO affine      the same, each landmark predicted from the other landmarks only
  LOO TPS         a thin-plate spline through the other landmarks (smoothing 0 and 100): the
                  best a smooth deformation known at every other landmark predicts
  image match     from the TRUE source landmark, a local normalised-correlation search
                  (template of 33 px around the target landmark, +-15 px) in the source image:
                  how far the image content moves a correct answer. A median above the bar means
                  the images themselves disagree with the landmarks at that precision.
  candidate       with --field-root, the .flo fields that ../shared/peers/run_real.py wrote
                  (<field-root>/<data set>/<pair name>/field.flo)
"""
import argparse
import csv
import os

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator


def landmarks(path):
    return np.loadtxt(path, delimiter=",", skiprows=1)[:, 1:]


def read_flo(path):
    with open(path, "rb") as f:
        if np.fromfile(f, np.float32, 1)[0] != 202021.25:
            raise ValueError(f"{path}: not a .flo file")
        w, h = np.fromfile(f, np.int32, 2)
        return np.fromfile(f, np.float32, w * h * 2).reshape(h, w, 2)


def bilinear(field, p):
    h, w, _ = field.shape
    x0, y0 = int(np.floor(p[0])), int(np.floor(p[1]))
    fx, fy = p[0] - x0, p[1] - y0
    at = lambda y, x: field[min(max(y, 0), h - 1), min(max(x, 0), w - 1)]
    return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * (
        (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))


def leave_one_out(target, source, predict):
    keep = np.ones(len(target), bool)
    errors = []
    for i in range(len(target)):
        keep[:] = True
        keep[i] = False
        errors.append(np.linalg.norm(predict(target[keep], source[keep], target[i:i + 1])[0] - source[i]))
    return np.array(errors)


def affine_predict(t, s, at):
    a = np.c_[t, np.ones(len(t))]
    m = np.linalg.lstsq(a, s, rcond=None)[0]
    return np.c_[at, np.ones(len(at))] @ m


def image_match(fixed, moving, target, source, half=16, radius=15):
    """Distance from each true source landmark to the best local match of its target patch."""
    f = cv2.cvtColor(fixed, cv2.COLOR_BGR2GRAY).astype(np.float32)
    m = cv2.cvtColor(moving, cv2.COLOR_BGR2GRAY).astype(np.float32)
    out = []
    for p, q in zip(target, source):
        x, y = int(round(p[0])), int(round(p[1]))
        qx, qy = int(round(q[0])), int(round(q[1]))
        r = half + radius
        if min(x - half, y - half, qx - r, qy - r) < 0 or x + half >= f.shape[1] or y + half >= f.shape[0] \
                or qx + r >= m.shape[1] or qy + r >= m.shape[0]:
            continue
        template = f[y - half:y + half + 1, x - half:x + half + 1]
        window = m[qy - r:qy + r + 1, qx - r:qx + r + 1]
        _, _, _, best = cv2.minMaxLoc(cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED))
        found = np.array([qx - radius + best[0] + (p[0] - x), qy - radius + best[1] + (p[1] - y)])
        out.append(np.linalg.norm(found - q))
    return np.array(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--field-root", help="run_real.py's candidate_fields/<data folder name> folder")
    args = ap.parse_args()
    print(f"{'pair':34} {'before':>7} {'aff fit':>7} {'LOO aff':>7} {'TPS 0':>7} {'TPS 100':>7} "
          f"{'match':>7} {'cand':>7}")
    for dataset in ("anhir_birl", "cima_lung_lesion3"):
        folder = os.path.join(args.data, dataset)
        if not os.path.isfile(os.path.join(folder, "pairs.csv")):
            continue
        for row in csv.DictReader(open(os.path.join(folder, "pairs.csv"))):
            diagonal = float(row["Image diagonal [pixels]"])
            target = landmarks(os.path.join(folder, row["Target landmarks"]))
            source = landmarks(os.path.join(folder, row["Source landmarks"]))
            # As ../shared/peers/run_real.py scores: row i of one file against row i of the other.
            n = min(len(target), len(source))
            target, source = target[:n], source[:n]
            median = lambda e: np.median(e) / diagonal
            fit = np.linalg.norm(affine_predict(target, source, target) - source, axis=1)
            tps = [leave_one_out(target, source, lambda t, s, at, k=k: RBFInterpolator(
                t, s, kernel="thin_plate_spline", smoothing=k)(at)) for k in (0.0, 100.0)]
            fixed = cv2.imread(os.path.join(folder, row["Target image"]))
            moving = cv2.imread(os.path.join(folder, row["Source image"]))
            name = os.path.splitext(row["Source image"])[0]
            candidate = float("nan")
            if args.field_root:
                flo = os.path.join(args.field_root, dataset, name, "field.flo")
                if os.path.isfile(flo):
                    field = read_flo(flo)
                    mapped = np.array([p + bilinear(field, p) for p in target])
                    candidate = median(np.linalg.norm(mapped - source, axis=1))
            print(f"{name[:34]:34} {median(np.linalg.norm(target - source, axis=1)):7.4f} {median(fit):7.4f} "
                  f"{median(leave_one_out(target, source, affine_predict)):7.4f} {median(tps[0]):7.4f} "
                  f"{median(tps[1]):7.4f} {median(image_match(fixed, moving, target, source)):7.4f} "
                  f"{candidate:7.4f}")


if __name__ == "__main__":
    main()
