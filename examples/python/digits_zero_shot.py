#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Contrastive two-tower training on real data: scikit-learn's 8x8 handwritten digits.

One tower reads images (the 64 grey levels of an 8x8 digit), the other reads text (the class
name, "zero" ... "nine", as a bag of hashed character trigrams). Both are libmm MLPs with 32-D
outputs, L2-normalised, trained with libmm's SigLIP loss (learned logit scale t and bias b) or
CLIP's InfoNCE (learned t). Each step pairs one random training image of every class with the
ten class names, so a batch has no duplicate positives. Zero-shot classification then embeds the
ten class names once and labels each held-out image with the nearest name. Run from the
repository root (needs python3-numpy and python3-sklearn):

    make && LIBMM_LIBRARY=lib/libmm.so.0 /usr/bin/python3 examples/python/digits_zero_shot.py

Prints the held-out accuracy every 250 steps for each loss, writes the curves to
digits_zero_shot.svg, and exits 1 if a loss ends below 90% held-out accuracy (the goal).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bindings", "python"))
import numpy as np  # noqa: E402
import libmm  # noqa: E402

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEXT_DIM, EMBED, HIDDEN, GOAL = 128, 32, 128, 0.90


def load_digits():
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError:
        sys.exit("digits_zero_shot: scikit-learn is needed for its digits data set "
                 "(apt-get install python3-sklearn)")
    d = sk_load()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def split(y, rng, train_frac=0.7):
    """Stratified split: 70% of every class for training, the rest held out."""
    tr, te = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(train_frac * idx.size))
        tr.append(idx[:k])
        te.append(idx[k:])
    return tr, np.concatenate(te)


def text_features(words):
    """Bag of character trigrams of "^word$", hashed into TEXT_DIM buckets, unit length."""
    f = np.zeros((len(words), TEXT_DIM), np.float32)
    for i, w in enumerate(words):
        s = "^" + w + "$"
        for j in range(len(s) - 2):
            h = 0
            for ch in s[j:j + 3]:
                h = (h * 131 + ord(ch)) % 1000003
            f[i, h % TEXT_DIM] += 1.0
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def tower(in_dim, batch, seed):
    m = libmm.Model(in_dim, max_batch=batch, seed=seed)
    m.dense(HIDDEN).activation("gelu").dense(EMBED)
    m.finalize()
    m.set_optimizer("adam", lr=2e-3)
    return m


def normalize(u):
    n = np.linalg.norm(u, axis=1, keepdims=True)
    return u / n, n


def normalize_backward(x, n, dx):
    """Gradient through x = u / |u| (rows): (dx - x (x . dx)) / |u|."""
    return (dx - x * np.sum(x * dx, axis=1, keepdims=True)) / n


class Scalar:
    """Adam on one scalar loss parameter (t or b), read from and written to the loss."""

    def __init__(self, loss, name, lr=1e-2):
        self.loss, self.name, self.lr = loss, name, lr
        self.m = self.v = 0.0
        self.k = 0

    def step(self, grad):
        self.k += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        mh, vh = self.m / (1 - 0.9 ** self.k), self.v / (1 - 0.999 ** self.k)
        self.loss.set(self.name, self.loss.get(self.name) - self.lr * mh / (np.sqrt(vh) + 1e-8))


def accuracy(img, txt, x, y, text):
    zi, _ = normalize(img.infer(x))
    zt, _ = normalize(txt.infer(text))
    return float(np.mean(np.argmax(zi @ zt.T, axis=1) == y))


def train(kind, x, y, tr, te, text, steps, seed):
    rng = np.random.default_rng(seed)
    img, txt = tower(64, 10, seed + 1), tower(TEXT_DIM, 10, seed + 2)
    loss = libmm.Loss(kind, max_batch=10, max_dim=EMBED)
    scalars = [Scalar(loss, "logit_scale")]
    if kind == "siglip":
        scalars.append(Scalar(loss, "logit_bias"))
    curve = [(0, accuracy(img, txt, x[te], y[te], text))]
    for s in range(1, steps + 1):
        batch = np.array([rng.choice(tr[c]) for c in range(10)])
        ui, ut = img.forward(x[batch]), txt.forward(text)
        zi, ni = normalize(ui)
        zt, nt = normalize(ut)
        _, dzi, dzt = getattr(loss, kind)(np.ascontiguousarray(zi, np.float32),
                                          np.ascontiguousarray(zt, np.float32))
        img.zero_grad()
        txt.zero_grad()
        img.backward(normalize_backward(zi, ni, dzi).astype(np.float32))
        txt.backward(normalize_backward(zt, nt, dzt).astype(np.float32))
        img.step()
        txt.step()
        scalars[0].step(loss.get("stat_dlogit_scale"))
        if kind == "siglip":
            scalars[1].step(loss.get("stat_dlogit_bias"))
        if s % 250 == 0:
            curve.append((s, accuracy(img, txt, x[te], y[te], text)))
            print("%-6s step %5d  loss %.4f  held-out zero-shot accuracy %.3f" %
                  (kind, s, loss.get("stat_loss"), curve[-1][1]), flush=True)
    return curve


def write_svg(path, curves, steps):
    """Held-out accuracy against steps, one polyline per loss, the goal as a dashed line."""
    w, h, l, r, t, b = 640, 360, 60, 130, 20, 50
    px = lambda s: l + (w - l - r) * s / steps  # noqa: E731
    py = lambda a: t + (h - t - b) * (1.0 - a)  # noqa: E731
    colors = {"siglip": "#1f77b4", "clip": "#d62728"}
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>',
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (l, py(0), w - r, py(0)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (l, py(0), l, py(1))]
    for a in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.2f</text>' % (l - 6, py(a) + 4, a))
    for s in np.linspace(0, steps, 5):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (px(s), py(0) + 16, s))
    out.append('<text x="%d" y="%d" text-anchor="middle">training steps (10 pairs each)</text>'
               % ((l + w - r) // 2, h - 10))
    out.append('<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">'
               'held-out zero-shot accuracy</text>' % ((t + h - b) // 2))
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="gray" stroke-dasharray="4 3"/>'
               % (l, py(GOAL), w - r, py(GOAL)))
    out.append('<text x="%d" y="%.1f" fill="gray">goal %.2f</text>' % (w - r + 6, py(GOAL) + 4,
                                                                     GOAL))
    for i, (kind, curve) in enumerate(curves.items()):
        pts = " ".join("%.1f,%.1f" % (px(s), py(a)) for s, a in curve)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' %
                   (colors[kind], pts))
        out.append('<text x="%d" y="%d" fill="%s">%s %.3f</text>' %
                   (w - r + 6, t + 40 + 18 * i, colors[kind], kind, curve[-1][1]))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loss", choices=["siglip", "clip", "both"], default="both")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--svg", default="digits_zero_shot.svg")
    a = ap.parse_args()
    x, y = load_digits()
    tr, te = split(y, np.random.default_rng(a.seed))
    text = text_features(WORDS)
    print("digits: %d training and %d held-out images, 10 classes; libmm %s" %
          (sum(t.size for t in tr), te.size, libmm.version()))
    curves, ok = {}, True
    for kind in (["siglip", "clip"] if a.loss == "both" else [a.loss]):
        t0 = time.process_time()
        curves[kind] = train(kind, x, y, tr, te, text, a.steps, a.seed)
        acc = curves[kind][-1][1]
        print("%s: held-out zero-shot accuracy %.3f (goal %.2f) in %.1f s CPU" %
              (kind, acc, GOAL, time.process_time() - t0))
        ok &= acc >= GOAL
    write_svg(a.svg, curves, a.steps)
    print("curves written to %s" % a.svg)
    if not ok:
        print("digits_zero_shot: below the goal")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
