#!/usr/bin/env python3
"""The real cross-stain landmark pairs with the moving (source) image turned: 90 degrees, and
90 degrees with a mirror flip (a transposition), as sections mounted the other way round on the
slide. Builds the turned copies of ../shared/data (images as PNG, landmarks moved with them),
runs ../shared/peers/run_real.py with an Alinify command as its candidate on the original and
on each turned copy, and prints each pair's median rTRE side by side.

    P=target/peers-venv/bin/python     # the peers' Python (../shared/peers/README.md, "Set up")
    $P scripts/oriented_landmarks.py
    $P scripts/oriented_landmarks.py --command 'target/release/alinify register {fixed} {moving} --preset cross-stain --init phase --threads {threads} --out {outdir} --field {field} --quiet'
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data")
PEERS = os.path.join(ROOT, "..", "shared", "peers")
DATASETS = ["anhir_birl", "cima_lung_lesion3"]
COMMAND = ("target/release/alinify register {fixed} {moving} --preset cross-stain "
           "--threads {threads} --out {outdir} --field {field} --quiet")

# Each turn: the image operation and where it sends a point (x, y) of an image w pixels wide.
TURNS = {
    "as_scanned": (lambda im: im, lambda x, y, w: (x, y)),
    "rot90": (lambda im: np.rot90(im, 1), lambda x, y, w: (y, w - 1 - x)),
    "rot90_mirror": (lambda im: np.ascontiguousarray(np.swapaxes(im, 0, 1)), lambda x, y, w: (y, x)),
}


def turned_copy(turn, out):
    """The datasets with every source image and its landmarks turned; the targets as they are."""
    image_op, point_op = TURNS[turn]
    for ds in DATASETS:
        src, dst = os.path.join(DATA, ds), os.path.join(out, ds)
        os.makedirs(dst, exist_ok=True)
        with open(os.path.join(src, "pairs.csv")) as f:
            rows = list(csv.reader(f))
        head, pairs = rows[0], rows[1:]
        renamed = {}
        for row in pairs:
            target, source, target_lm, source_lm = row[:4]
            for name in (target, target_lm):
                if not os.path.exists(os.path.join(dst, name)):
                    shutil.copy(os.path.join(src, name), os.path.join(dst, name))
            png = os.path.splitext(source)[0] + f"_{turn}.png"
            lm = os.path.splitext(source_lm)[0] + f"_{turn}.csv"
            if not os.path.exists(os.path.join(dst, png)):
                image = cv2.imread(os.path.join(src, source), cv2.IMREAD_COLOR)
                w = image.shape[1]
                cv2.imwrite(os.path.join(dst, png), image_op(image))
                with open(os.path.join(src, source_lm)) as f:
                    points = list(csv.reader(f))
                with open(os.path.join(dst, lm), "w", newline="") as f:
                    writer = csv.writer(f)
                    writer.writerow(points[0])
                    for index, x, y in points[1:]:
                        tx, ty = point_op(float(x), float(y), w)
                        writer.writerow([index, f"{tx:g}", f"{ty:g}"])
            renamed[(source, source_lm)] = (png, lm)
        with open(os.path.join(dst, "pairs.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(head)
            for row in pairs:
                png, lm = renamed[(row[1], row[3])]
                writer.writerow([row[0], png, row[2], lm] + row[4:])


def run(data, out, command, threads):
    """run_real.py on `data` with the command as its only method; {pair name: median rTRE}."""
    subprocess.run([sys.executable, os.path.join(PEERS, "run_real.py"), "--data", data, "--out", out,
                    "--methods", "--threads", str(threads), "--candidate-name", "alinify",
                    "--candidate", command], check=True, capture_output=True)
    with open(os.path.join(out, "results_real.csv")) as f:
        rows = list(csv.DictReader(f))
    return [(r["name"], float(r["rtre_median"]) if r["rtre_median"] else None)
            for r in rows if r["method"] == "alinify" and r["kind"] == "landmarks"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--command", default=COMMAND, help="the candidate (run_real.py's placeholders)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "oriented"))
    args = ap.parse_args()
    results = {}
    for turn in TURNS:
        data = os.path.join(args.work, "data", turn)
        turned_copy(turn, data)
        results[turn] = run(data, os.path.join(args.work, f"run_{turn}"), args.command, args.threads)
    names = list(results)
    print("| pair | " + " | ".join(f"median rTRE, {n}" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for i, (pair, _) in enumerate(results["as_scanned"]):
        cells = []
        for n in names:
            v = results[n][i][1] if i < len(results[n]) else None
            cells.append("—" if v is None else f"{v:.4f}")
        print(f"| {pair} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
