"""The run config: Hydra schemas, and its strict conversion to frozen dataclasses.

Hydra checks keys and types of every group against these schemas when it
composes the config; `resolve` then builds each group's frozen dataclass,
whose checks catch impossible values (a width not divisible by the head
count), all before anything is compiled. Errors name the key.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import MISSING, DictConfig, OmegaConf

from research.data.config import DataConfig, corpus_name
from research.data.tokenizer import TokenizerConfig
from research.decoding.config import DecodeConfig
from research.models.decoders import DECODERS
from research.models.encoders import ENCODERS
from research.models.seq2seq import ModelConfig
from research.registry import ConfigError, build_dataclass, check, schema
from research.training import averaging
from research.training.optim import OptimConfig
from research.training.sharding import MeshConfig
from research.training.steps import REMAT_POLICIES

REPO = Path(__file__).resolve().parent.parent  # the checkout: conf/, experiments/ and the package


BUDGETS = ("steps", "tokens", "flops", "seconds")


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    seed: int = 0  # parameters, dropout and data order all derive from it
    max_steps: int = 10000
    eval_every: int = 1000  # also evaluates at the last step
    log_every: int = 100
    eval_examples: int = 500  # validation examples decoded for BLEU/ROUGE at each evaluation; 0 = all
    label_smoothing: float = 0.1
    lambda_coverage: float = 0.0  # weight of the coverage loss (research/models/layers/coverage.py); 0 = off
    precision: str = "fp32"  # fp32 | bf16 (bf16 compute, fp32 parameters and optimizer state)
    grad_accum: int = 1  # micro-batches per update: the same update with about 1/k of the activation memory
    remat: str = "none"  # none | dots (keep weight-matmul outputs, recompute the rest) | full (recompute the forward pass)
    keep_checkpoints: int = 2  # most recent checkpoints kept, besides the best one
    checkpoint: bool = True
    checkpoint_every: int = 0  # steps between checkpoints; 0 = at every evaluation
    resume: bool = False  # continue from the run directory's latest complete checkpoint
    samples: int = 3  # decoded validation examples printed and logged at each evaluation
    max_bad_steps: int = 5  # consecutive steps with a non-finite loss or gradient (each skipped) before the run stops
    select_by: str = "metric"  # metric (BLEU / ROUGE-L, higher is better) | loss (validation loss, lower): picks the best checkpoint
    patience: int = 0  # evaluations in a row without improvement of select_by before the run stops; 0 = never
    budget: str = "steps"  # steps | tokens | flops | seconds: what the runs of a comparison share (research/training/budget.py)
    budget_amount: float = 0.0  # target tokens, training FLOPs or training seconds; unused for steps (max_steps is the amount)
    test: bool = False  # after training, decode the test split with the selected parameters (hyps_test.txt, eval_test.json)
    average: str = "none"  # none | last:K | best:K: parameters evaluated on the test split (element-wise mean of K checkpoints)

    def __post_init__(self):
        check(0 <= self.seed < 2**32, "seed", "must be in [0, 2**32)")  # PRNGKey keeps 32 bits without x64
        check(self.max_steps > 0, "max_steps", "must be positive")
        check(self.eval_every > 0, "eval_every", "must be positive")
        check(self.log_every > 0, "log_every", "must be positive")
        check(self.eval_examples >= 0, "eval_examples", "must be >= 0")
        check(0.0 <= self.label_smoothing < 1.0, "label_smoothing", "must be in [0, 1)")
        check(self.lambda_coverage >= 0.0, "lambda_coverage", "must be >= 0 (0 = no coverage loss)")
        check(self.precision in ("fp32", "bf16"), "precision", f"'{self.precision}' is not one of fp32, bf16")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be at least 1")
        check(self.grad_accum >= 1, "grad_accum", "must be >= 1")
        check(self.remat in REMAT_POLICIES, "remat", f"'{self.remat}' is not one of {', '.join(REMAT_POLICIES)}")
        check(self.max_bad_steps >= 1, "max_bad_steps", "must be at least 1")
        check(self.select_by in ("metric", "loss"), "select_by", f"'{self.select_by}' is not one of metric, loss")
        check(self.patience >= 0, "patience", "must be >= 0 (0: never stop early)")
        check(self.budget in BUDGETS, "budget", f"'{self.budget}' is not one of {', '.join(BUDGETS)}")
        if self.budget == "steps":
            check(self.budget_amount == 0, "budget_amount", "is not used with trainer.budget=steps (trainer.max_steps is "
                  "the amount); leave it 0 or choose tokens, flops or seconds")
        else:
            check(self.budget_amount > 0, "budget_amount", f"must be positive with trainer.budget={self.budget}")
        chosen = averaging.parse(self.average)  # the one reader of none | last:K | best:K
        if chosen is not None:  # fail at start, not after training, when K checkpoints cannot exist
            kind, k = chosen
            check(self.checkpoint, "average", "needs trainer.checkpoint=true: it averages saved checkpoints")
            every, m = self.checkpoint_every, self.max_steps  # saves: each evaluation (also at the last step), each `every` steps
            evals = -(-m // self.eval_every)  # ceil: only these can be best checkpoints
            saves = evals if kind == "best" or not every else len({*range(every, m + 1, every),
                                                                   *range(self.eval_every, m + 1, self.eval_every), m})
            check(k <= saves, "average", f"{self.average} needs {k} checkpoints, but the run saves {saves} "
                  f"{'with a validation ' if kind == 'best' else ''}(trainer.max_steps={m}, eval_every={self.eval_every}, "
                  f"checkpoint_every={every})")
            check(kind != "last" or k <= self.keep_checkpoints, "average", f"{self.average} needs the last {k} "
                  f"checkpoints, but trainer.keep_checkpoints={self.keep_checkpoints} keeps fewer; raise it to {k}")
        check(self.samples >= 0, "samples", "must be >= 0")
        check(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0")
        check(self.checkpoint or not self.resume, "resume", "needs trainer.checkpoint=true")


GROUPS = {
    "model": ModelConfig, "data": DataConfig, "tokenizer": TokenizerConfig,
    "optim": OptimConfig, "trainer": TrainerConfig, "decode": DecodeConfig, "mesh": MeshConfig,
}

# The top-level schema; the encoder and decoder nodes are checked by their own group schemas.
Schema = dataclasses.make_dataclass(
    "Schema",
    [("encoder", Any, dataclasses.field(default=MISSING)), ("decoder", Any, dataclasses.field(default=MISSING))]
    + [(k, schema(cls), dataclasses.field(default=MISSING)) for k, cls in GROUPS.items()],
)
TOP_LEVEL = tuple(f.name for f in dataclasses.fields(Schema))


def check_top_level(cfg: DictConfig) -> None:
    """Refuses top-level keys that are not groups.

    Hydra's `+key=value` adds keys past the structured schema, and `resolve`
    reads only the groups, so a stray key would otherwise be ignored in
    silence: a typo, or a `_target_` that looks as if it selects a class
    (nothing here instantiates config nodes; components are chosen by
    registry name). `hydra` is Hydra's own node, removed before the app sees it.
    """
    for key in cfg:
        if key not in TOP_LEVEL and key != "hydra":
            raise ConfigError(f"{key}: not a config key; the top level holds only the groups {', '.join(TOP_LEVEL)}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    encoder: str
    encoder_config: Any
    decoder: str
    decoder_config: Any
    model: ModelConfig
    data: DataConfig
    tokenizer: TokenizerConfig
    optim: OptimConfig
    trainer: TrainerConfig
    decode: DecodeConfig
    mesh: MeshConfig


def register_schemas() -> None:
    """Makes every group schema and the `${repo:}`, `${corpus_name:DIR}`, `${job_dir:...}` and
    `${hydra_subdir:...}` resolvers known to Hydra."""
    if not OmegaConf.has_resolver("repo"):
        OmegaConf.register_new_resolver("repo", lambda: str(REPO))
    if not OmegaConf.has_resolver("corpus_name"):
        OmegaConf.register_new_resolver("corpus_name", corpus_name)
    from research import sweep  # noqa: PLC0415 (the sweep folder names, for conf/config.yaml's hydra node)

    for name, fn in (("job_dir", sweep.job_dir), ("hydra_subdir", sweep.hydra_subdir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    ENCODERS.import_all()
    DECODERS.import_all()
    ConfigStore.instance().store(name="schema", node=Schema)


# The data.name a run gets when the data.dir it sets is a sweep or an interpolation (unknown until composed);
# quoted, as Hydra's override grammar takes a nested interpolation only inside a quoted string.
NAME_FROM_DIR = "data.name='${corpus_name:${data.dir}}'"
_KEY = re.compile(r"^(?:\+\+|\+|~)?([^=~+][^=]*)(?:=|$)")


def name_follows_dir(overrides: Sequence[str]) -> list[str]:
    """`overrides`, plus a `data.name` derived from `data.dir` when they set data.dir but not data.name.

    A data config names its corpus beside its folder, so pointing data.dir at
    another corpus alone would keep the old name, under which the run is
    prepared, logged and filed (`hydra.run.dir` holds ${data.name}). The name
    is the folder's basename, made safe for paths (`corpus_name`): given
    literally for a plain value (`data.dir=~/fr-en` -> `data.name=fr_en`), as
    `${corpus_name:${data.dir}}` for a sweep (`data.dir=a,b`: each job its
    own) or an interpolation. Other command-line words pass through;
    a data.dir override Hydra cannot parse is left for Hydra to report.
    """
    overrides = list(overrides)
    keys = [m.group(1) if (m := _KEY.match(o)) else None for o in overrides]
    if "data.name" in keys or "data.dir" not in keys:
        return overrides
    at = len(keys) - 1 - keys[::-1].index("data.dir")  # the last one wins in Hydra too
    try:
        override = OverridesParser.create().parse_override(overrides[at])
    except HydraException:
        return overrides
    if override.is_sweep_override():
        name = NAME_FROM_DIR
    elif override.value() is None:  # data.dir=null, ~data.dir: no folder to name the corpus after
        return overrides
    elif "${" in str(override.value()):
        name = NAME_FROM_DIR
    else:
        name = f"data.name={corpus_name(str(override.value()))}"
    return [*overrides[: at + 1], name, *overrides[at + 1:]]


def resolve(cfg: DictConfig) -> RunConfig:
    """Strictly converts a composed config; raises ConfigError naming the bad key."""
    check_top_level(cfg)
    for group in ("encoder", "decoder"):
        if group not in cfg or not isinstance(cfg[group], DictConfig) or "name" not in cfg[group]:
            raise ConfigError(f"{group}: no {group} chosen; pick one with {group}=NAME")
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:
        raise ConfigError(f"{getattr(e, 'full_key', '')}: {getattr(e, 'msg', e)}") from None
    enc_name, dec_name = container["encoder"]["name"], container["decoder"]["name"]
    built = {k: build_dataclass(cls, container.get(k, {}), prefix=k) for k, cls in GROUPS.items()}
    symbols = built["tokenizer"].model_type == "symbols"
    check(symbols or built["data"].format != "generated", "tokenizer",
          f"data={built['data'].name} is generated symbol sequences: add tokenizer=symbols (one id per symbol; "
          "SentencePiece would merge them into pieces)")
    check(not built["model"].pointer_generator or built["tokenizer"].joint, "model.pointer_generator",
          "copies source pieces into the output by their ids, so it needs one joint vocabulary: set "
          "tokenizer.joint=true (and leave model.pointer_generator=false for separate vocabularies)")
    encoder_config = ENCODERS.config(enc_name, container["encoder"])  # the encoder's errors first, as before
    decoder_config = DECODERS.config(dec_name, container["decoder"])
    attention = getattr(decoder_config, "attention", "")  # only the RNN decoder can have none
    for key, on in (("trainer.lambda_coverage", built["trainer"].lambda_coverage > 0),
                    ("decode.coverage_penalty", built["decode"].coverage_penalty != "none")):
        check(not on or attention != "none", key,
              "reads the decoder's attention over the source, and decoder.attention=none has none")
    return RunConfig(
        encoder=enc_name, encoder_config=encoder_config,
        decoder=dec_name, decoder_config=decoder_config,
        **built,
    )
