#!/usr/bin/env python3
"""Any rotation, mirror flips, scale and partial overlap: Alinify's accurate mode (its default
initialisation) on pairs made by turning, flipping, scaling and shifting one image, beside
OpenCV's ORB + RANSAC similarity (`cv2.ORB_create`, `cv2.estimateAffinePartial2D`) on the same
pairs. The truth is the similarity itself, so the end-point error is exact.

    P=target/peers-venv/bin/python     # the peers' Python (../shared/peers/README.md, "Set up")
    $P scripts/orientation_sweep.py                 # the whole sweep (a few minutes, 2 cores)
    $P scripts/orientation_sweep.py --quick         # every 45 degrees, fewer scales and overlaps
    $P scripts/orientation_sweep.py --bases kidney --angles 0 90 --mirror 1
    $P scripts/orientation_sweep.py --timing 4096 17320   # the feature initialisation's time

The cases (each on every base):
  rotation  0..345 degrees in 15 degree steps, each with and without a mirror flip, scale 1
  scale     0.5, 0.7, 1.4, 2 (rotation 0 and 37 degrees)
  overlap   80, 60, 40 % of the fixed image's area (a shift along x; rotation 0 and 90 degrees)

The bases: `procedural` (`alinify synth`'s texture, the fixed image a 512 px crop of a 2048 px
field, so the moving image has texture to its borders), `kidney` (the ANHIR rat kidney H&E
section, 1164 x 787) and `lung` (the CIMA lung lesion H&E section, 892 x 661) on their white
slides, and `brain` (the ANTs r16 MRI slice, 256 x 256, black around it). For the scans the
moving canvas holds the whole turned, scaled section, as a rescan would.

EPE: over the fixed pixels whose true position lies inside the moving image (mean and p95), and
the mean over the section alone (pixels that differ from the slide after a small blur; every
pixel for the procedural texture): on the empty slide nothing in the images constrains the
field, so an error there is the B-spline's extrapolation, not a misregistration.
Times: Alinify's whole command; ORB's detection on both images, the matching and the fit.
Rows go to WORK/orientation.jsonl, the table to WORK/orientation.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data")
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "peers"))
import run_peers  # noqa: E402  (read_flo)

SCANS = {
    "kidney": (os.path.join(DATA, "anhir_birl", "Rat-Kidney_HE.jpg"), 255.0),
    "lung": (os.path.join(DATA, "cima_lung_lesion3", "29-041-Izd2-w35-He-les3.jpg"), 255.0),
    "brain": (os.path.join(DATA, "ants_rslices", "r16slice.jpg"), 0.0),
}
BASES = ["procedural", *SCANS]


def cases(quick):
    angles = range(0, 360, 45 if quick else 15)
    for a in angles:
        for mirror in (False, True):
            yield dict(kind="rotation", angle=a, mirror=mirror, scale=1.0, overlap=1.0)
    for s in ((0.5, 2.0) if quick else (0.5, 0.7, 1.4, 2.0)):
        for a in ((37,) if quick else (0, 37)):
            yield dict(kind="scale", angle=a, mirror=False, scale=s, overlap=1.0)
    for o in ((0.4,) if quick else (0.8, 0.6, 0.4)):
        for a in ((90,) if quick else (0, 90)):
            yield dict(kind="overlap", angle=a, mirror=False, scale=1.0, overlap=o)


def load_base(name, alinify, work):
    """(fixed image as float32 0..255, the image the moving one is sampled from, offset of the
    fixed image in it, fill value)."""
    if name == "procedural":
        out = os.path.join(work, "procedural_base")
        path = os.path.join(out, "fixed.tif")
        if not os.path.exists(path):
            subprocess.run([alinify, "synth", "--size", "2048x2048", "--seed", "11", "--deform", "affine",
                            "--depth", "f32", "--noise", "0", "--out", out, "--quiet"], check=True)
        field = tifffile.imread(path).astype(np.float32) * 255.0
        o = (2048 - 512) // 2
        return field[o:o + 512, o:o + 512].copy(), field, (o, o), float(field.mean())
    path, fill = SCANS[name]
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE).astype(np.float32)
    return image, image, (0, 0), fill


def make_case(base, case):
    """The moving image and the true map fixed -> moving, q = A p + b."""
    fixed, source, (ox, oy), fill = base
    h, w = fixed.shape
    th = np.deg2rad(case["angle"])
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    mirror = np.diag([-1.0, 1.0]) if case["mirror"] else np.eye(2)
    A = case["scale"] * rot @ mirror
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    if source is fixed:  # a scan: the moving canvas holds the whole turned section
        mapped = corners @ A.T
        b = -mapped.min(axis=0)
        size = np.ceil(mapped.max(axis=0) - mapped.min(axis=0)).astype(int) + 1
    else:  # a texture field: the same canvas, the centre kept
        c = np.array([(w - 1) / 2, (h - 1) / 2])
        b = c - A @ c
        size = np.array([w, h])
    if case["overlap"] < 1.0:
        b = b + np.array([(1.0 - case["overlap"]) * w, 0.0])
        size = np.array([w, h])
    # moving(q) = source(A^-1 (q - b) + offset).
    Ai = np.linalg.inv(A)
    inverse = np.hstack([Ai, (-Ai @ b + np.array([ox, oy]))[:, None]])
    blurred = source
    if case["scale"] < 1.0:  # no aliasing when the moving image is smaller
        sigma = 0.5 / case["scale"]
        blurred = cv2.GaussianBlur(source, (0, 0), sigma)
    moving = cv2.warpAffine(blurred, inverse, (int(size[0]), int(size[1])),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return moving, A, b


def truth(shape, A, b, moving_shape):
    h, w = shape
    X, Y = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    qx = A[0, 0] * X + A[0, 1] * Y + b[0]
    qy = A[1, 0] * X + A[1, 1] * Y + b[1]
    mh, mw = moving_shape
    mask = (qx >= 0) & (qx <= mw - 1) & (qy >= 0) & (qy <= mh - 1)
    return np.stack([qx - X, qy - Y], axis=-1), mask


def epe(flow, gt, mask):
    e = np.hypot(flow[..., 0] - gt[..., 0], flow[..., 1] - gt[..., 1])[mask]
    return float(e.mean()), float(np.percentile(e, 95))


def section_mask(base):
    """The fixed image's content: pixels whose 2-px blur differs from the slide (the median of
    the image's border) by more than 12 grey levels (all pixels for a texture field)."""
    fixed, source, _, _ = base
    if source is not fixed:
        return np.ones(fixed.shape, bool)
    border = np.concatenate([fixed[0], fixed[-1], fixed[:, 0], fixed[:, -1]])
    return np.abs(cv2.GaussianBlur(fixed, (0, 0), 2.0) - np.median(border)) > 12.0


def run_alinify(alinify, pair, threads, extra):
    out = os.path.join(pair, "alinify")
    field = os.path.join(out, "field.flo")
    cmd = [alinify, "register", os.path.join(pair, "fixed.tif"), os.path.join(pair, "moving.tif"),
           "--mode", "accurate", "--threads", str(threads), "--out", out, "--field", field, "--quiet", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return dict(status=f"exit {done.returncode}: {done.stderr.strip()[-200:]}", time_s=wall)
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    init = report.get("init") or {}
    chosen = init.get("chosen")
    if init.get("turned_back"):
        chosen = f"turned back, {chosen}"
    return dict(flow=run_peers.read_flo(field), time_s=wall, chosen=chosen)


def to_u8(image):
    return np.clip(image, 0, 255).astype(np.uint8)


def orb_similarity(fixed, moving, side=512):
    """ORB + RANSAC similarity on levels of at most `side` px (as Alinify's features), timed; the
    map fixed -> moving at full resolution, or None."""
    t0 = time.perf_counter()
    levels = []
    for image in (fixed, moving):
        f = min(1.0, side / max(image.shape))
        small = cv2.resize(to_u8(image), None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else to_u8(image)
        levels.append((small, f))
    orb = cv2.ORB_create(nfeatures=1500)
    (kf, df), (km, dm) = (orb.detectAndCompute(levels[0][0], None), orb.detectAndCompute(levels[1][0], None))
    M = None
    if df is not None and dm is not None and len(kf) >= 2 and len(km) >= 2:
        matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(df, dm)
        if len(matches) >= 3:
            p = np.float32([kf[m.queryIdx].pt for m in matches]) / levels[0][1]
            q = np.float32([km[m.trainIdx].pt for m in matches]) / levels[1][1]
            M, _ = cv2.estimateAffinePartial2D(p, q, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    return M, time.perf_counter() - t0


def timing(alinify, work, sizes, threads):
    """The feature initialisation alone on large pairs (the kidney section scaled up to a square
    of each size, against its transposition: a turn and a mirror), `alinify analyze features`'
    own `seconds` (after decoding) beside ORB + RANSAC on the same 512 px levels (the resize
    timed too) and, up to 4096 px, ORB on the full image."""
    path, fill = SCANS["kidney"]
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    side = max(image.shape)
    square = np.full((side, side), int(fill), np.uint8)
    square[:image.shape[0], :image.shape[1]] = image
    print("| size | Alinify features s | inliers | ORB + RANSAC (512 px level) s | ORB + RANSAC (full image) s |")
    print("|---|---|---|---|---|")
    for n in sizes:
        pair = os.path.join(work, "timing", str(n))
        os.makedirs(pair, exist_ok=True)
        fixed = cv2.resize(square, (n, n), interpolation=cv2.INTER_CUBIC)
        moving = np.ascontiguousarray(fixed.T)
        f, m = os.path.join(pair, "fixed.tif"), os.path.join(pair, "moving.tif")
        tifffile.imwrite(f, fixed)
        tifffile.imwrite(m, moving)
        out = os.path.join(pair, "features")
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([alinify, "analyze", "features", f, m, "--out", out, "--threads", str(threads), "-q"],
                       check=True)
        with open(os.path.join(out, "features.json")) as fh:
            features = json.load(fh)
        _, orb_s = orb_similarity(fixed.astype(np.float32), moving.astype(np.float32))
        full = "—"
        if n <= 4096:
            _, full_s = orb_similarity(fixed.astype(np.float32), moving.astype(np.float32), side=n)
            full = f"{full_s:.3f}"
        print(f"| {n} | {features['seconds']:.3f} | {features['inliers']} | {orb_s:.3f} | {full} |", flush=True)
        del fixed, moving


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", nargs="+", default=BASES, choices=BASES)
    ap.add_argument("--angles", type=float, nargs="+", help="only these rotations (rotation cases)")
    ap.add_argument("--mirror", type=int, choices=[0, 1], help="only unmirrored (0) or mirrored (1)")
    ap.add_argument("--kinds", nargs="+", default=["rotation", "scale", "overlap"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alinify", default=os.path.join(ROOT, "target", "release", "alinify"))
    ap.add_argument("--extra", default="", help="more arguments for alinify register")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "orientation"))
    ap.add_argument("--timing", type=int, nargs="+", metavar="SIZE",
                    help="only time the feature initialisation on pairs of these sizes (e.g. 4096 17320)")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    if args.timing:
        timing(args.alinify, args.work, args.timing, args.threads)
        return
    os.makedirs(args.work, exist_ok=True)
    jsonl = os.path.join(args.work, "orientation.jsonl")
    rows = []
    for name in args.bases:
        base = load_base(name, args.alinify, args.work)
        for case in cases(args.quick):
            if case["kind"] not in args.kinds:
                continue
            if case["kind"] == "rotation" and args.angles and case["angle"] not in args.angles:
                continue
            if args.mirror is not None and case["mirror"] != bool(args.mirror):
                continue
            label = f"{name}_{case['kind']}_a{case['angle']:g}{'_m' if case['mirror'] else ''}" \
                    f"_s{case['scale']:g}_o{case['overlap']:g}"
            pair = os.path.join(args.work, "data", label)
            os.makedirs(pair, exist_ok=True)
            moving, A, b = make_case(base, case)
            tifffile.imwrite(os.path.join(pair, "fixed.tif"), base[0] / 255.0)
            tifffile.imwrite(os.path.join(pair, "moving.tif"), moving / 255.0)
            gt, mask = truth(base[0].shape, A, b, moving.shape)
            row = dict(base=name, **case)
            result = run_alinify(args.alinify, pair, args.threads, args.extra.split())
            if "flow" in result:
                row["alinify_epe"], row["alinify_p95"] = epe(result["flow"], gt, mask)
                row["alinify_epe_section"], _ = epe(result["flow"], gt, mask & section_mask(base))
                row["alinify_init"] = result["chosen"]
            else:
                row["alinify_status"] = result["status"]
            row["alinify_s"] = result["time_s"]
            M, orb_s = orb_similarity(base[0], moving)
            row["orb_s"] = orb_s
            if M is not None:
                h, w = base[0].shape
                X, Y = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
                flow = np.stack([M[0, 0] * X + M[0, 1] * Y + M[0, 2] - X,
                                 M[1, 0] * X + M[1, 1] * Y + M[1, 2] - Y], axis=-1)
                row["orb_epe"], row["orb_p95"] = epe(flow, gt, mask)
            rows.append(row)
            with open(jsonl, "a") as out:
                out.write(json.dumps(row) + "\n")
            a = f"{row['alinify_epe']:8.3f} ({row['alinify_init']})" if "alinify_epe" in row else row["alinify_status"]
            o = f"{row['orb_epe']:8.2f}" if "orb_epe" in row else "no fit"
            print(f"{label:42s} alinify {a}  {row['alinify_s']:5.2f} s   orb {o}  {orb_s:5.3f} s", flush=True)
    lines = ["| base | case | angle | mirror | scale | overlap | Alinify EPE mean / p95 | on the section | init | s | ORB + RANSAC EPE mean | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        al = f"{r['alinify_epe']:.3f} / {r['alinify_p95']:.2f}" if "alinify_epe" in r else r["alinify_status"]
        orb = f"{r['orb_epe']:.2f}" if "orb_epe" in r else "no fit"
        sec = f"{r['alinify_epe_section']:.3f}" if "alinify_epe_section" in r else ""
        lines.append(f"| {r['base']} | {r['kind']} | {r['angle']:g} | {'yes' if r['mirror'] else ''} | "
                     f"{r['scale']:g} | {r['overlap']:g} | {al} | {sec} | {r.get('alinify_init', '')} | "
                     f"{r['alinify_s']:.2f} | {orb} | {r['orb_s']:.3f} |")
    ok = [r for r in rows if r.get("alinify_epe", np.inf) < 0.3]
    lines.append("")
    on_section = sum(r.get("alinify_epe_section", np.inf) < 0.3 for r in rows)
    lines.append(f"Cases: {len(rows)}; Alinify mean EPE < 0.3 px in {len(ok)} (on the section: {on_section}); "
                 f"ORB + RANSAC < 0.3 px in {sum(r.get('orb_epe', np.inf) < 0.3 for r in rows)}.")
    text = "\n".join(lines)
    with open(os.path.join(args.work, "orientation.md"), "w") as out:
        out.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
