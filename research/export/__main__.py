"""`python -m research.export ctranslate2 run_dir=PATH out=DIR [checkpoint=best] [quantization=int8]`.

Writes the run's model in another engine's format. `ctranslate2` (the only
target so far, research/export/ctranslate2.py) needs the optional extra
`pip install -e .[serve]`; a run whose encoder or decoder CTranslate2 cannot
express is refused with a message saying which. The checkpoint is any that
research.evaluate takes (best, last, last:K, best:K averages).
"""
from __future__ import annotations

import logging
import sys
from typing import Sequence

from research import console
from research.registry import ConfigError
from research.run_dir import load, parse_args
from research.training.checkpoint import CheckpointError

log = logging.getLogger("research.export")

TARGETS = ("ctranslate2",)
OPTIONS = {"run_dir": None, "out": None, "checkpoint": "best", "quantization": ""}
QUANTIZATIONS = ("", "int8", "int8_float32", "int16", "float16", "bfloat16", "int8_float16", "int8_bfloat16")


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    if not argv or argv[0] not in TARGETS:
        log.error("usage: python -m research.export {%s} run_dir=PATH out=DIR [checkpoint=best] [quantization=int8]",
                  ",".join(TARGETS))
        return 2
    try:
        opts, overrides = parse_args(argv[1:], OPTIONS)
        if overrides:
            raise ConfigError(f"{overrides[0]}: not an option of research.export (it takes {', '.join(OPTIONS)})")
        if not opts["run_dir"] or not opts["out"]:
            raise ConfigError("run_dir and out are both needed")
        if opts["quantization"] not in QUANTIZATIONS:
            raise ConfigError(f"quantization={opts['quantization']}: not one of {', '.join(q or 'none' for q in QUANTIZATIONS)}")
        from research.export import ctranslate2 as target  # noqa: PLC0415

        run = load(opts["run_dir"], checkpoint=opts["checkpoint"])
        target.check_exportable(run.cfg)
        out = target.export(run, opts["out"], opts["quantization"] or None)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
        log.error("%s", e)
        return 2
    except ImportError as e:
        log.error("%s: the export needs CTranslate2: pip install -e '.[serve]'", e)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
