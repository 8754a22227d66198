"""Structured configs: the schema of the ``data`` and ``model`` groups, and the ranges of every knob.

The dataclasses are registered with Hydra's ConfigStore (``schema/data/base``, ``schema/model/base``)
and each YAML of those groups starts from them (``defaults: [/schema/data@_here_: base, _self_]``),
so a shared default is written once, here, and a value of the wrong type fails while the config is
composed. :func:`check_config` then checks every range at the start of a task, before the model, the
data or the workers are built, and raises :class:`~ocr.errors.UserInputError` with one line,
``<key>=<value>: <what is allowed>``. ``trainer`` is Lightning's open set of arguments: its knobs
are listed in :class:`TrainerKnobs` for checking only, so any other Trainer argument still passes.

A new key is one line in its dataclass: ``name: type = knob(default, ...)`` (or a plain default
when any value of the type is fine).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from ocr.errors import UserInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Allowed:
    """The values a knob accepts: a type plus optional bounds, or a closed set of choices."""

    kind: type = float
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # exclusive lower bound
    below: float | None = None  # exclusive upper bound
    choices: tuple[Any, ...] = ()
    optional: bool = False
    length: int | None = None  # a list of exactly this many numbers
    also: tuple[Any, ...] = ()  # accepted besides the range (trainer.devices: -1, "auto")
    others: str = ""  # described after the range: forms passed on to the library unchecked
    unchecked: tuple[type, ...] = ()  # types the library parses itself (trainer.devices="0,1")

    def describe(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(dict.fromkeys(str(c) for c in self.choices))  # 16 and "16"
        else:
            noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.kind]
            if self.length is not None:
                noun = f"a list of {self.length} {'integers' if self.kind is int else 'numbers'}, each"
            bounds = [
                f">= {_num(self.minimum)}" if self.minimum is not None else "",
                f"> {_num(self.above)}" if self.above is not None else "",
                f"<= {_num(self.maximum)}" if self.maximum is not None else "",
                f"< {_num(self.below)}" if self.below is not None else "",
            ]
            text = " ".join([noun, " and ".join(b for b in bounds if b)]).strip()
            if self.also:
                text += ", " + ", ".join(str(a) for a in self.also)
            if self.others:
                text += ", " + self.others
        return text + (", or null" if self.optional else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, self.unchecked) or (value in self.also and not isinstance(value, bool)):
            return True
        if self.choices:
            return value in self.choices
        if self.length is not None:
            return (
                isinstance(value, list | tuple)
                and len(value) == self.length
                and all(self._in_range(v) for v in value)
            )
        return self._in_range(value)

    def _in_range(self, value: Any) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str)
        # bool is an int to Python; never to a user (`max_bytes: false` is not a budget of 0).
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )


def _num(x: float | None) -> str:
    return f"{x:g}" if x is not None else ""


def knob(default: Any, kind: type | None = None, **allowed: Any) -> Any:
    """A dataclass field with its allowed values (see :class:`Allowed`)."""
    kind = kind or (type(default) if default is not None else float)
    return field(default=default, metadata={"allowed": Allowed(kind=kind, **allowed)})


def probability(default: float) -> Any:
    return knob(default, float, minimum=0.0, maximum=1.0)


# -- data -------------------------------------------------------------------------------------------
@dataclass
class LoaderKnobs:
    batch_size: int = knob(4, minimum=1)
    val_batch_size: int | None = knob(None, int, minimum=1, optional=True)
    num_workers: int | None = knob(None, int, minimum=0, optional=True)  # null: from the rank's cores
    persistent_workers: bool = True
    pin_memory: bool = False
    prefetch_factor: int | None = knob(None, int, minimum=1, optional=True)
    span_epochs: bool = True


@dataclass
class AugmentKnobs:
    enabled: bool = True
    rotate: float = knob(5.0, minimum=0.0, maximum=180.0)
    scale: list[float] = field(
        default_factory=lambda: [0.8, 1.2], metadata={"allowed": Allowed(float, above=0.0, length=2)}
    )
    affine_p: float = probability(0.7)
    color_p: float = probability(0.5)
    blur_p: float = probability(0.2)
    crop_size: int | None = knob(None, int, minimum=32, optional=True)
    # padded: crops anywhere in the image_size square (the receipt plus its bottom/right padding);
    # content: pads only up to crop_size and crops within the receipt, so a narrow receipt's crop
    # is not half padding
    crop_from: str = knob("padded", str, choices=("padded", "content"))


@dataclass
class TargetKnobs:
    """Defaults as in :class:`ocr.targets.params.DBTargetParams` (which checks them again)."""

    shrink_ratio: float = knob(0.4, above=0.0, below=1.0)
    thresh_min: float = probability(0.3)
    thresh_max: float = probability(0.7)
    min_text_size: float = knob(8.0, minimum=0.0)
    formula: str = knob("exact", str, choices=("db", "exact"))


@dataclass
class CacheKnobs:
    enabled: bool = True
    dir: str | None = "${paths.cache_dir}/targets"
    max_bytes: int = knob(2 * 1024**3, minimum=1)
    memory_items: int = knob(256, minimum=0)
    train: bool = False
    samples: bool = True
    decoded: bool = False


SYNTHETIC_READER = "ocr.data.datasets.synthetic.SyntheticReceipts"

#: The names ``data.reader`` took before it held a ``_target_`` (removed next release).
_OLD_READER_NAMES = {
    "sroie": "ocr.data.datasets.sroie.SROIEDataset",
    "json": "ocr.data.datasets.json_layout.JsonLayoutDataset",
    "synthetic": SYNTHETIC_READER,
    "images": "ocr.data.datasets.images.ImageFolderDataset",
}


def old_reader_error(name: str) -> UserInputError:
    """``data.reader: sroie`` (the form before ``_target_``): the line saying what to write instead."""
    target = _OLD_READER_NAMES.get(name, "<module>.<ReceiptDataset subclass>")
    pick = f"pick the shipped config with data={name}, or " if name in _OLD_READER_NAMES else ""
    return UserInputError(
        f"data.reader={name}: a reader is now selected by class; {pick}write "
        f"reader: {{_target_: {target}}} in your data config "
        f"(data.reader._target_={target} on the command line)"
    )


@dataclass
class DataConfig:
    _target_: str = "ocr.data.datamodule.ReceiptDataModule"
    # The data module builds the reader itself, once per split: Hydra passes ``reader`` as is.
    _recursive_: bool = False
    # ``_target_``: the reader's class (a ReceiptDataset); the other keys: its arguments for both splits.
    reader: dict[str, Any] = field(default_factory=lambda: {"_target_": SYNTHETIC_READER})
    # A split's own reader arguments (num_samples, seed...), over ``reader``'s: open on purpose.
    train: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)
    root: str | None = None
    train_root: str | None = None
    val_root: str | None = None
    image_size: int = knob(640, minimum=32)
    # Images over this many pixels are skipped and counted before they are decoded; null: no budget.
    max_image_pixels: int | None = knob(80_000_000, int, minimum=1, optional=True)
    seed: int = "${seed}"  # type: ignore[assignment]
    # Removed key, kept in the schema for one release so that setting it gets the datamodule's
    # "was removed" error instead of a bare unknown-key error.
    normalize_on_device: Any = None
    augment: AugmentKnobs = field(default_factory=AugmentKnobs)
    loader: LoaderKnobs = field(default_factory=LoaderKnobs)
    targets: TargetKnobs = field(default_factory=TargetKnobs)
    cache: CacheKnobs = field(default_factory=CacheKnobs)


# -- model ------------------------------------------------------------------------------------------
@dataclass
class NetKnobs:
    backbone: str = "resnet18"
    pretrained: bool = False
    checkpoint_path: str | None = None
    inner_channels: int = knob(256, minimum=1)
    k: float = knob(50.0, above=0.0)


@dataclass
class LossKnobs:
    bce_weight: float = knob(5.0, minimum=0.0)
    dice_weight: float = knob(1.0, minimum=0.0)
    l1_weight: float = knob(10.0, minimum=0.0)
    negative_ratio: float = knob(3.0, above=0.0)


@dataclass
class PostprocessKnobs:
    thresh: float = probability(0.3)
    box_thresh: float = probability(0.5)
    max_candidates: int = knob(1000, minimum=1)
    unclip_ratio: float = knob(1.5, above=0.0)
    min_size: float = knob(3.0, minimum=0.0)


@dataclass
class OptimizerKnobs:
    lr: float = knob(1e-3, above=0.0)
    weight_decay: float = knob(1e-4, minimum=0.0)


@dataclass
class SchedulerKnobs:
    warmup_steps: int = knob(0, minimum=0)
    min_lr_ratio: float = probability(0.01)


@dataclass
class EvaluatorKnobs:
    # null: the node's cores left after the DataLoader workers, per local rank; 0: in-process
    workers: int | None = knob(None, int, minimum=0, optional=True)
    handoff: str = knob("auto", str, choices=("auto", "uint8", "float16", "float32"))
    slots: int | None = knob(None, int, minimum=1, optional=True)
    timeout_s: float = knob(300.0, above=0.0)
    # null: copy the maps to the evaluators on a thread behind the forward pass on CUDA only
    copy_thread: bool | None = knob(None, bool, optional=True)


@dataclass
class ModelConfig:
    _target_: str = "ocr.models.lit_module.DBNetModule"
    net: NetKnobs = field(default_factory=NetKnobs)
    loss: LossKnobs = field(default_factory=LossKnobs)
    postprocess: PostprocessKnobs = field(default_factory=PostprocessKnobs)
    optimizer: OptimizerKnobs = field(default_factory=OptimizerKnobs)
    scheduler: SchedulerKnobs = field(default_factory=SchedulerKnobs)
    evaluator: EvaluatorKnobs = field(default_factory=EvaluatorKnobs)


# -- checked only (not Hydra schemas) ----------------------------------------------------------------
#: Lightning's precision values (``trainer.precision=16`` is read as the integer 16).
PRECISIONS: tuple[str | int, ...] = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    32,
    16,
    64,
    "32",
    "16",
    "64",
    "bf16",
    "transformer-engine",
    "transformer-engine-float16",
)


@dataclass
class TrainerKnobs:
    """The Trainer arguments a user sets most; Lightning's other arguments pass unchecked."""

    max_epochs: int | None = knob(2, int, minimum=-1, optional=True)
    # A count (or -1: all); a string or list of device ids is Lightning's to parse.
    devices: int | str = knob(
        1, int, minimum=1, also=(-1, "auto"), others="or a list of ids", unchecked=(str, list)
    )
    precision: str | int = knob("32-true", str, choices=PRECISIONS)
    num_nodes: int = knob(1, minimum=1)
    check_val_every_n_epoch: int | None = knob(1, int, minimum=1, optional=True)
    log_every_n_steps: int = knob(5, minimum=1)
    num_sanity_val_steps: int = knob(0, minimum=-1)
    gradient_clip_val: float | None = knob(None, float, minimum=0.0, optional=True)
    # An integer is a number of batches, a float a fraction of them (Lightning's rule): both are fine.
    limit_train_batches: float | None = knob(None, float, minimum=0.0, optional=True)
    limit_val_batches: float | None = knob(None, float, minimum=0.0, optional=True)
    enable_progress_bar: bool = True
    enable_model_summary: bool = True


@dataclass
class EvalPostprocessKnobs:
    """``ocr validate|predict postprocess.*``: null keeps the checkpoint's value."""

    thresh: float | None = knob(None, float, minimum=0.0, maximum=1.0, optional=True)
    box_thresh: float | None = knob(None, float, minimum=0.0, maximum=1.0, optional=True)
    max_candidates: int | None = knob(None, int, minimum=1, optional=True)
    unclip_ratio: float | None = knob(None, float, above=0.0, optional=True)
    min_size: float | None = knob(None, float, minimum=0.0, optional=True)


@dataclass
class EvalEvaluatorKnobs:
    """``ocr validate evaluator.*``: null keeps the checkpoint's value."""

    workers: int | None = knob(None, int, minimum=0, optional=True)
    handoff: str | None = knob(None, str, choices=("auto", "uint8", "float16", "float32"), optional=True)
    copy_thread: bool | None = knob(None, bool, optional=True)


@dataclass
class TaskKnobs:
    seed: int = knob(42, minimum=0)
    image_size: int | None = knob(None, int, minimum=32, optional=True)
    # ocr predict: torch threads (null: torch's default); the pad multiple of the input (0/null: none)
    threads: int | None = knob(None, int, minimum=1, optional=True)
    pad_multiple: int | None = knob(32, int, minimum=0, optional=True)
    opset: int = knob(17, minimum=7)  # ocr export: the ONNX opset
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerKnobs = field(default_factory=TrainerKnobs)
    postprocess: EvalPostprocessKnobs = field(default_factory=EvalPostprocessKnobs)
    evaluator: EvalEvaluatorKnobs = field(default_factory=EvalEvaluatorKnobs)


def register() -> None:
    """Put the group schemas in Hydra's ConfigStore (idempotent; needed before composing)."""
    store = ConfigStore.instance()
    store.store(group="schema/data", name="base", node=DataConfig)
    store.store(group="schema/model", name="base", node=ModelConfig)


register()


def allowed_for(dotted: str) -> Allowed | None:
    """The allowed values of ``data.loader.batch_size`` and the like; None for an unchecked key."""
    node: Any = TaskKnobs
    spec: Allowed | None = None
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node):
            return None
        fields = {f.name: f for f in dataclasses.fields(node)}
        if part not in fields:
            return None
        spec = fields[part].metadata.get("allowed")
        node = get_type_hints(node).get(part)
    return spec


def check_config(cfg: DictConfig) -> None:
    """Raise UserInputError for the first knob outside its range (in the order of the dataclasses)."""
    _check(cfg, TaskKnobs, "")


def _check(node: Any, schema: Any, prefix: str) -> None:
    if not isinstance(node, DictConfig):
        return
    hints = get_type_hints(schema)
    for f in dataclasses.fields(schema):
        if f.name not in node or OmegaConf.is_missing(node, f.name):
            continue
        key, sub = f"{prefix}{f.name}", hints.get(f.name)
        spec: Allowed | None = f.metadata.get("allowed")
        if dataclasses.is_dataclass(sub):
            _check(node[f.name], sub, f"{key}.")
        elif spec is not None:
            value = node[f.name]
            _check_value(key, OmegaConf.to_container(value) if isinstance(value, ListConfig) else value, spec)


def check_fields(knobs: Any, prefix: str) -> None:
    """:func:`check_config` for a dataclass of knobs built in Python rather than composed by Hydra."""
    for f in dataclasses.fields(knobs):
        _check_value(f"{prefix}{f.name}", getattr(knobs, f.name), f.metadata.get("allowed"))


def _check_value(key: str, value: Any, spec: Allowed | None) -> None:
    if spec is not None and not spec.accepts(value):
        raise UserInputError(f"{key}={_show(value)}: {spec.describe()}")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def composition_error(exc: BaseException) -> UserInputError | None:
    """The one-line error for a value Hydra could not merge into a schema (``batch_size=four``)."""
    from omegaconf import ValueNode
    from omegaconf.errors import ValidationError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ValidationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    key = str(getattr(cause, "full_key", "") or "")
    value = getattr(cause, "value", "?")
    if isinstance(value, ValueNode):  # a value merged from a YAML file comes as its node
        value = value._value()
    if key in ("reader", "data.reader") and isinstance(value, str):
        return old_reader_error(value)
    spec = allowed_for(key)
    if spec is None:  # Hydra names the key inside its group: the first group that has it wins
        for prefix in ("data.", "model."):
            spec = allowed_for(prefix + key)
            if spec is not None:
                key = prefix + key
                break
    expected = spec.describe() if spec else str(cause).splitlines()[0]
    return UserInputError(f"{key}={_show(value)}: {expected}")


def from_dotlist(
    schema: type[T],
    items: list[str],
    option: str,
    base: T | None = None,
    error: type[Exception] = UserInputError,
    what: str = "setting",
) -> T:
    """Command-line ``NAME=VALUE`` settings into the dataclass ``schema`` (typed by OmegaConf)."""
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    names = ", ".join(f.name for f in dataclasses.fields(schema))  # type: ignore[arg-type]
    for item in items:
        if "=" not in item:
            raise error(f"{option} expects NAME=VALUE, got {item!r} (names: {names})")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(base or schema), OmegaConf.from_dotlist(list(items)))
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "")
        item = next((i for i in items if i.split("=", 1)[0] == key), key)
        if isinstance(exc, ConfigKeyError):
            raise error(f"{option} {item}: unknown {what} {key!r}; use one of: {names}") from None
        raise error(f"{option} {item}: {str(exc).splitlines()[0]}") from None
    return schema(**OmegaConf.to_container(merged))  # type: ignore[arg-type]


__all__ = [
    "Allowed",
    "DataConfig",
    "ModelConfig",
    "allowed_for",
    "check_config",
    "check_fields",
    "composition_error",
    "from_dotlist",
    "knob",
    "old_reader_error",
]
