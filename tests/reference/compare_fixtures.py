#!/usr/bin/env python3
"""Compares two SAM3 fixture folders tensor by tensor (e.g. ours with the shared ones).

    python tests/reference/compare_fixtures.py tests/fixtures/sam3-tiny ../shared/fixtures/sam3-tiny

For every safetensors file present in either folder, prints each tensor's max abs difference
(and whether it is bit-identical), lists tensors present on one side only, and compares the
two `sam3_config.json` / `sam3_tracker_config.json`. Exits 1 when a common tensor differs by
more than --atol (default 1e-6), when shapes or dtypes differ, or when the configs differ;
tensors present on one side only are reported but allowed with --allow-missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def load_config(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        config = json.load(f)
    return strip_bookkeeping(config)


def strip_bookkeeping(value):
    """Drops keys that say nothing about the model: the library version, and
    `_attn_was_changed`, which transformers sets in a config object (here the ViT's) when
    `set_attn_implementation` is called on a model built from it (the shared generator's eager
    cross-check did that before writing its config)."""
    if isinstance(value, dict):
        return {
            k: strip_bookkeeping(v)
            for k, v in value.items()
            if k not in ("transformers_version", "_attn_was_changed")
        }
    if isinstance(value, list):
        return [strip_bookkeeping(v) for v in value]
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ours")
    parser.add_argument("theirs")
    parser.add_argument("--atol", type=float, default=1e-6)
    parser.add_argument("--allow-missing", action="store_true", help="tensors on one side only are not failures")
    args = parser.parse_args(argv)

    failures = 0
    worst = 0.0
    identical = compared = 0
    names = sorted(
        {f for d in (args.ours, args.theirs) for f in os.listdir(d) if f.endswith(".safetensors")}
    )
    for fname in names:
        paths = [os.path.join(d, fname) for d in (args.ours, args.theirs)]
        if not all(os.path.exists(p) for p in paths):
            print(f"{fname}: only in {'ours' if os.path.exists(paths[0]) else 'theirs'}")
            failures += not args.allow_missing
            continue
        ours, theirs = (load_file(p) for p in paths)
        for key in sorted(set(ours) | set(theirs)):
            if key not in ours or key not in theirs:
                print(f"{fname} {key}: only in {'ours' if key in ours else 'theirs'}")
                failures += not args.allow_missing
                continue
            a, b = ours[key], theirs[key]
            if a.shape != b.shape or a.dtype != b.dtype:
                print(f"{fname} {key}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
                failures += 1
                continue
            compared += 1
            same = a.tobytes() == b.tobytes()
            identical += same
            diff = 0.0 if same or a.size == 0 else float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
            worst = max(worst, diff)
            flag = "identical" if same else f"max abs diff {diff:.3e}"
            if diff > args.atol:
                flag += "  FAIL"
                failures += 1
            print(f"{fname} {key}: {flag}")
    for cfg in ("sam3_config.json", "sam3_tracker_config.json"):
        a, b = (load_config(os.path.join(d, cfg)) for d in (args.ours, args.theirs))
        if a != b:
            print(f"{cfg}: differs")
            failures += 1
        else:
            print(f"{cfg}: same")
    print(f"{compared} tensors compared, {identical} bit-identical, max abs diff {worst:.3e}, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
