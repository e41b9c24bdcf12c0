#!/usr/bin/env python3
"""Generalisation benchmark: Alinify's fast and accurate modes beside OpenCV DIS (MEDIUM, FAST)
and, when itk-elastix is installed, elastix, on a matrix of generated pair families.

    P=target/peers-venv/bin/python     # the peers' Python (../shared/peers/README.md, "Set up")
    $P scripts/robustness.py                          # the default matrix (about 25 minutes, 2 cores)
    $P scripts/robustness.py --sizes 1024 --seeds 1 2 --textures brick grass --deform 0.05
    $P scripts/robustness.py --quick                  # 1024 px, one seed: a few minutes

The families:

  texture    the peers' generator bases in tile mode (mirror tiling at native scale, so a 4096 px
             image repeats its 512 or 1024 px base): mosaic, brick, gravel, grass, camera; and
             `procedural`, the texture of `alinify synth`, fed to the same generator
  deform     largest smooth displacement, as a fraction of the width (0.005, 0.02, 0.05), on top
             of the peers' similarity (rotation 2 degrees, scale 1.02, shift 1 % of the width)
  intensity  none (noise only); gamma (the peers' gain, gamma, offset and ramp); stain (a strong
             nonlinear monotone map with a bias field, as a different stain gives)

Pairs are built exactly as ../shared/peers/make_pair.py builds them (its functions are imported,
not copied) and scored with run_peers.py's `epe` (mean and p95 over the valid mask). Times: the
whole Alinify command (process start, decoding, every output written: `wall_s`) and its
registration alone (`register_s`, from report.json); for the peers, the calls that produce the
field (file I/O excluded), as run_peers.py measures them. Rows go to WORK/robustness.jsonl as
they finish, and the table (a row per family, a column pair per method) to WORK/robustness.md.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np
import tifffile
from scipy import ndimage

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.path.join(ROOT, "..", "shared", "peers")
sys.path.insert(0, PEERS)
import make_pair  # noqa: E402  (the peers' generator: load_base, smooth_field)
import run_peers  # noqa: E402  (the peers' scoring and DIS runner: epe, run_dis, read_flo)

TEXTURES = ["mosaic", "brick", "gravel", "grass", "camera", "procedural"]
DEFORMS = [0.005, 0.02, 0.05]
INTENSITIES = ["none", "gamma", "stain"]


def procedural_base(alinify, work):
    """`alinify synth`'s procedural texture (its fixed image with no deformation), 1024 px."""
    out = os.path.join(work, "procedural_base")
    path = os.path.join(out, "fixed.tif")
    if not os.path.exists(path):
        subprocess.run([alinify, "synth", "--size", "1024x1024", "--seed", "7", "--deform", "affine",
                        "--depth", "f32", "--noise", "0", "--out", out, "--quiet"], check=True)
    return tifffile.imread(path).astype(np.float64)


def intensity_change(moving, kind, xs):
    """The moving image's intensity family (noise comes after, as in make_pair.py)."""
    if kind == "none":
        return moving
    if kind == "gamma":  # make_pair.py's mild monotone change
        ramp = 0.03 * (xs / (xs[-1]) - 0.5)[None, :]
        return 0.95 * np.clip(moving, 0, None) ** 0.9 + 0.03 + ramp
    if kind == "stain":  # a strong S-curve, compressed highlights and a 20 % multiplicative bias
        m = np.clip(moving, 0, 1)
        s = 1.0 / (1.0 + np.exp(-8.0 * (m - 0.45)))
        bias = 1.0 + 0.2 * np.sin(np.pi * xs / xs[-1])[None, :]
        return 0.15 + 0.7 * s ** 1.6 * bias
    raise ValueError(kind)


def make_family_pair(out, size, texture, deform, intensity, seed, bases):
    """make_pair.py's construction with the family's texture, deformation and intensity change."""
    if os.path.exists(os.path.join(out, "gt_flow.npy")):
        return
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    if texture not in bases:
        bases[texture] = make_pair.load_base(texture)
    coeffs = ndimage.spline_filter(bases[texture], order=3, mode="mirror")
    H = W = size
    du, dv = make_pair.smooth_field(rng, H, W, 6, deform * W)
    sign = rng.choice([-1.0, 1.0])
    th = np.deg2rad(sign * 2.0)
    ang = rng.uniform(0, 2 * np.pi)
    tx, ty = 0.01 * W * np.cos(ang), 0.01 * W * np.sin(ang)
    cx = cy = (W - 1) / 2.0
    A = 1.02 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    xs = np.arange(W, dtype=np.float64)
    gt = np.empty((H, W, 2), np.float32)
    fixed = np.empty((H, W), np.float32)
    moving = np.empty((H, W), np.float32)
    mask = np.empty((H, W), np.uint8)
    chunk = max(1, (1 << 22) // W)
    for y0 in range(0, H, chunk):
        y1 = min(H, y0 + chunk)
        X, Y = np.meshgrid(xs, np.arange(y0, y1, dtype=np.float64))
        Tx = cx + A[0, 0] * (X - cx) + A[0, 1] * (Y - cy) + tx + du[y0:y1]
        Ty = cy + A[1, 0] * (X - cx) + A[1, 1] * (Y - cy) + ty + dv[y0:y1]
        gt[y0:y1, :, 0] = Tx - X
        gt[y0:y1, :, 1] = Ty - Y
        mask[y0:y1] = (Tx >= 0) & (Tx <= W - 1) & (Ty >= 0) & (Ty <= H - 1)
        fixed[y0:y1] = ndimage.map_coordinates(coeffs, [Ty, Tx], order=3, mode="mirror", prefilter=False)
        moving[y0:y1] = ndimage.map_coordinates(coeffs, [Y, X], order=3, mode="mirror", prefilter=False)
    moving = intensity_change(moving, intensity, xs).astype(np.float32)
    fixed += rng.standard_normal(fixed.shape, dtype=np.float32) * np.float32(0.01)
    moving += rng.standard_normal(moving.shape, dtype=np.float32) * np.float32(0.01)
    tifffile.imwrite(os.path.join(out, "fixed.tif"), fixed)
    tifffile.imwrite(os.path.join(out, "moving.tif"), moving)
    tifffile.imwrite(os.path.join(out, "mask.tif"), mask * np.uint8(255), compression="zlib")
    np.save(os.path.join(out, "gt_flow.npy"), gt)


def run_alinify(alinify, mode, pair, threads, extra=()):
    """The whole command (with `extra` arguments), timed; EPE from the field it writes."""
    out = os.path.join(pair, f"alinify_{mode}")
    field = os.path.join(out, "field.flo")
    cmd = [alinify, "register", os.path.join(pair, "fixed.tif"), os.path.join(pair, "moving.tif"),
           "--mode", mode, "--threads", str(threads), "--out", out, "--field", field, "--quiet", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return dict(status=f"exit {done.returncode}: {done.stderr.strip()[-200:]}", time_s=wall)
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    return dict(flow=run_peers.read_flo(field), time_s=wall, register_s=report["seconds"]["register"],
                fast_choice=report.get("flow_choice"))


def run_opencv(preset, f, m):
    t0 = time.perf_counter()
    flow, _ = run_peers.run_dis(f, m, preset)
    return dict(flow=flow, time_s=time.perf_counter() - t0)


def run_elastix(f, m, threads):
    t0 = time.perf_counter()
    flow, _ = run_peers.run_elastix(f, m, "mse", threads, scaled_pyr=True)
    return dict(flow=flow, time_s=time.perf_counter() - t0)


def table(rows, methods):
    """Markdown: a row per family, mean EPE / p95 / seconds per method (mean over seeds)."""
    key = lambda r: (r["size"], r["texture"], r["deform"], r["intensity"])
    groups = {}
    for r in rows:
        groups.setdefault(key(r), {}).setdefault(r["method"], []).append(r)
    head = "| size | texture | deform | intensity | " + " | ".join(
        f"{m} EPE mean / p95 / s" for m in methods) + " |"
    lines = [head, "|" + "---|" * (4 + len(methods))]
    wins = {m: 0 for m in methods}
    for k in sorted(groups):
        cells = []
        medium = groups[k].get("opencv_dis_medium", [])
        medium_epe = np.mean([r["epe_mean"] for r in medium]) if medium else None
        for m in methods:
            rs = [r for r in groups[k].get(m, []) if "epe_mean" in r]
            if not rs:
                cells.append("—")
                continue
            e = np.mean([r["epe_mean"] for r in rs])
            p = np.mean([r["epe_p95"] for r in rs])
            t = np.mean([r["time_s"] for r in rs])
            if medium_epe is not None and e <= medium_epe:
                wins[m] += 1
            cells.append(f"{e:.3f} / {p:.2f} / {t:.2f}")
        lines.append(f"| {k[0]} | {k[1]} | {k[2]:g} | {k[3]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Families: {len(groups)}. Mean EPE at most DIS MEDIUM's: " + ", ".join(
        f"{m} {wins[m]}" for m in methods if m != "opencv_dis_medium") + ".")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--textures", nargs="+", default=TEXTURES, choices=TEXTURES)
    ap.add_argument("--deform", type=float, nargs="+", default=DEFORMS)
    ap.add_argument("--intensity", nargs="+", default=INTENSITIES, choices=INTENSITIES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--methods", nargs="+",
                    default=["alinify_fast", "alinify_accurate", "opencv_dis_medium", "opencv_dis_fast"],
                    help="also: elastix (needs itk-elastix in this Python)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alinify", default=os.path.join(ROOT, "target", "release", "alinify"))
    ap.add_argument("--extra", default="", help="more arguments for alinify register (both modes)")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "robustness"))
    ap.add_argument("--quick", action="store_true", help="1024 px, one seed, every family")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.seeds = [1024], [1]
    import cv2
    cv2.setNumThreads(args.threads)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.makedirs(args.work, exist_ok=True)
    bases = {}
    if "procedural" in args.textures:
        bases["procedural"] = procedural_base(args.alinify, args.work)
    jsonl = os.path.join(args.work, "robustness.jsonl")
    rows = []
    for size, texture, deform, intensity, seed in itertools.product(
            args.sizes, args.textures, args.deform, args.intensity, args.seeds):
        pair = os.path.join(args.work, "data", f"{texture}_{size}_d{deform:g}_{intensity}_s{seed}")
        make_family_pair(pair, size, texture, deform, intensity, seed, bases)
        f, m, gt, mask = run_peers.load_pair(pair)
        for method in args.methods:
            if method.startswith("alinify_"):
                result = run_alinify(args.alinify, method.split("_", 1)[1], pair, args.threads,
                                     args.extra.split())
            elif method.startswith("opencv_dis_"):
                result = run_opencv(method.rsplit("_", 1)[1], f, m)
            elif method == "elastix":
                result = run_elastix(f, m, args.threads)
            else:
                raise SystemExit(f"unknown method {method}")
            row = dict(size=size, texture=texture, deform=deform, intensity=intensity, seed=seed,
                       method=method, time_s=result["time_s"])
            flow = result.pop("flow", None)
            if flow is None:
                row["status"] = result["status"]
            else:
                row["epe_mean"], row["epe_p95"] = run_peers.epe(flow, gt, mask)
                row.update({k: v for k, v in result.items() if k not in row and v is not None})
            rows.append(row)
            with open(jsonl, "a") as out:
                out.write(json.dumps(row) + "\n")
            print(f"{os.path.basename(pair):36s} {method:18s} " + (
                f"EPE {row['epe_mean']:7.3f} p95 {row['epe_p95']:7.3f}" if "epe_mean" in row
                else row["status"]) + f"  {row['time_s']:6.2f} s", flush=True)
    text = table(rows, args.methods)
    with open(os.path.join(args.work, "robustness.md"), "w") as out:
        out.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
