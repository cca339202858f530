"""`python -m research.bench`: the benchmark suite, every section in one process.

    python -m research.bench [--only train,scaling,decode,pipeline,vectors] [--out DIR] [--repeats N]
        [--rounds R] [--shape bench|large] [--precision fp32|bf16] [--refuse-busy]

On an accelerator: `--shape large --precision bf16` (train and decode only).

Writes DIR/bench.json (every number, for comparing runs) and DIR/bench.md (the
tables); the library is `research/benchmarks/`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from research.benchmarks import busy, peak, suite
from research.benchmarks.shape import SHAPES


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m research.bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help=f"comma-separated sections of {','.join(suite.SECTIONS)} (default: all "
                   "of them at the fp32 benchmark shape, train,decode otherwise)")
    p.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default: bench)")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per measurement (median reported)")
    p.add_argument("--rounds", type=int, default=suite.train.ROUNDS,
                   help="rounds of each pair that has a PyTorch peer, each with its own peak; judged on the median round")
    p.add_argument("--shape", choices=sorted(SHAPES), default="bench",
                   help="model size of the train and decode sections: bench (2-core CPU) or large (an accelerator)")
    p.add_argument("--precision", choices=sorted(peak.DTYPES), default="fp32",
                   help="compute dtype of the models and of the matmul peak their MFU is against")
    p.add_argument("--pairs", default=None, help="train section only these pairs, e.g. rnn-rnn,transformer-transformer")
    p.add_argument("--refuse-busy", action="store_true",
                   help="stop, writing nothing, when the machine is busy (research/benchmarks/busy.py)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers (vs_torch stays empty)")
    args = p.parse_args(argv)
    allowed = suite.sections(args.shape, args.precision)
    only = [s.strip() for s in (args.only or ",".join(allowed)).split(",") if s.strip()]
    if args.rounds < 1 or args.repeats < 1:
        p.error(f"--rounds and --repeats must be at least 1, got {args.rounds} and {args.repeats}")
    unknown = set(only) - set(suite.SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(suite.SECTIONS)}")
    if set(only) - set(allowed):
        p.error(f"--shape {args.shape} --precision {args.precision} runs the {' and '.join(allowed)} sections only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        results = suite.run(only, repeats=args.repeats, rounds=args.rounds, with_torch=not args.no_torch,
                            pairs=args.pairs.split(",") if args.pairs else None, refuse_busy=args.refuse_busy,
                            shape=args.shape, precision=args.precision)
    except busy.BusyMachine as e:
        logging.error("%s", e)
        sys.exit(3)
    js, md = suite.write(results, args.out)
    print(md.read_text())
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
