"""LightningDataModule wiring reader -> transform -> DBCollateFN -> DataLoader for each split.

Images travel as uint8 and :meth:`on_after_batch_transfer` normalises them on the device (see
``ocr.data.transforms``).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from torch.utils.data import DataLoader, SequentialSampler

from ocr.cache.client import CacheClient
from ocr.cache.codec import KIND_DECODED, KIND_SAMPLE
from ocr.data.collate import EVAL_MAPS, TARGET_MAPS, DBCollateFN
from ocr.data.datasets import ImageFolderDataset, ReceiptDataset
from ocr.data.decoded_cache import DecodedImageDataset
from ocr.data.epoch_loader import EpochSpanningDataLoader
from ocr.data.image_io import DEFAULT_MAX_PIXELS
from ocr.data.loader import TimedDataLoader
from ocr.data.loader_defaults import LoaderPlan, plan_loaders
from ocr.data.sample_cache import CachedSampleDataset
from ocr.data.sampler import EpochBatchSampler, EpochSampler
from ocr.data.transforms import AugmentConfig, ReceiptTransform, TransformConfig, normalize_images
from ocr.errors import UserInputError
from ocr.schema import SYNTHETIC_READER, CacheKnobs, LoaderKnobs, old_reader_error
from ocr.targets.cache import PolygonCache
from ocr.targets.db_targets import slowdown_injected
from ocr.targets.params import DBTargetParams

log = logging.getLogger(__name__)

_REMOVED: Any = object()  # the default of removed options: any value given is an error
_CLIENT_MEMORY_BYTES = 128 * 1024**2  # per process and client: 256 MiB of LRU for the two together


def _worker_init(worker_id: int) -> None:
    """Give each worker its own augmentation stream, derived from the seeded torch RNG."""
    info = torch.utils.data.get_worker_info()
    if info is None:
        return
    # One OpenCV thread per worker: the workers are the parallelism; nested pools only oversubscribe.
    # 0 (run sequentially), not 1: in a worker forked after the main process used OpenCV's pthreads
    # pool (e.g. post-processing in a first validation), setNumThreads(1) waits forever on the
    # pool's dead threads; 0 leaves the pool alone (see ocr.bench.pipeline, a second validate).
    cv2.setNumThreads(0)
    transform = getattr(info.dataset, "transform", None)
    if isinstance(transform, ReceiptTransform) and not transform.deterministic:
        transform.set_random_seed(torch.initial_seed() % 2**32)


def _deterministic(dataset: object) -> bool:
    """Whether ``dataset``'s transform gives the same sample every epoch (what a cache key needs)."""
    transform = getattr(dataset, "transform", None)
    return isinstance(transform, ReceiptTransform) and transform.deterministic


def reader_class(reader: object) -> type[ReceiptDataset]:
    """The class ``data.reader._target_`` names; a one-line error for anything that is not a reader."""
    if isinstance(reader, str):
        raise old_reader_error(reader)
    target = reader.get("_target_") if isinstance(reader, Mapping) else None
    if not isinstance(target, str) or "." not in target:
        raise UserInputError(
            f"data.reader={reader!r}: a mapping whose _target_ is a reader class, e.g. "
            f"{{_target_: {SYNTHETIC_READER}}}"
        )
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UserInputError(f"data.reader._target_={target}: cannot import it ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, ReceiptDataset)):
        raise UserInputError(
            f"data.reader._target_={target}: not a reader (a subclass of ocr.data.datasets.ReceiptDataset)"
        )
    return cls


def _limit_batches(trainer: Any, sampler: EpochSampler, batch_size: int) -> int | None:
    """The trainer's ``limit_train_batches`` as batches per epoch (as Lightning counts it), or None."""
    limit = getattr(trainer, "limit_train_batches", None)
    if limit is None or isinstance(limit, bool):
        return None
    if isinstance(limit, int):
        return limit
    full = -(-len(sampler) // batch_size)
    return None if float(limit) >= 1.0 else int(full * float(limit))


class ReceiptDataModule(L.LightningDataModule):
    def __init__(
        self,
        reader: Mapping[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        val: dict[str, Any] | None = None,
        root: str | None = None,
        train_root: str | None = None,
        val_root: str | None = None,
        image_size: int = 640,
        augment: dict[str, Any] | None = None,
        loader: dict[str, Any] | None = None,
        targets: dict[str, Any] | None = None,
        cache: dict[str, Any] | None = None,
        seed: int = 0,
        predict_input: str | None = None,
        normalize_on_device: Any = _REMOVED,
        # Evaluation/predict only: pad to a multiple of this instead of the square (None: square).
        pad_multiple: int | None = None,
        # Images over this many pixels are skipped and counted (skipped_image_too_large) before
        # they are decoded; null: no budget.
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__()
        if (
            normalize_on_device is not _REMOVED and normalize_on_device is not None
        ):  # one release of migration: say so, never ignore it
            raise UserInputError(
                "data.normalize_on_device was removed: images always travel as uint8 and are "
                "normalised on the device; delete the key from your config "
                f"(it is set to {normalize_on_device!r})"
            )
        budget = max_image_pixels
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise UserInputError(
                f"data.max_image_pixels={budget!r}: a positive number of pixels, or null for no budget"
            )
        self.max_image_pixels = max_image_pixels
        # Stored in checkpoints, so `ocr validate` can reuse the training image size and targets.
        self.save_hyperparameters(ignore=["normalize_on_device"])
        if reader is None:
            reader = {"_target_": SYNTHETIC_READER}
            self.hparams["reader"] = reader  # the perf summary and the checkpoint name it too
        self.reader_cls = reader_class(reader)  # before any work: a wrong reader fails at once
        shared = {k: v for k, v in reader.items() if k != "_target_"}
        self.split_kwargs = {"train": {**shared, **(train or {})}, "val": {**shared, **(val or {})}}
        self.root, self.train_root, self.val_root = root, train_root, val_root
        self.transform_config = TransformConfig(
            image_size=image_size, augment=AugmentConfig(**(augment or {})), pad_multiple=pad_multiple
        )
        # data.loader / data.cache as the schema declares them (types and ranges are checked at
        # start-up by ocr.schema.check_config); no cache dir given: the default below
        self.loader = LoaderKnobs(**(loader or {}))
        self.target_params = DBTargetParams(**(targets or {}))
        self.cache_config = CacheKnobs(**{"dir": None, **(cache or {})})
        self.seed = seed
        self.predict_input = predict_input
        self.datasets: dict[str, ReceiptDataset] = {}
        self._cache: PolygonCache | None = None
        self._clients: dict[str, CacheClient] = {}
        self._plan: LoaderPlan | None = None

    # -- datasets ---------------------------------------------------------------------------
    def _split_root(self, split: str) -> str | None:
        if split == "train":
            return self.train_root
        return self.val_root or self.root

    def build(self, split: str, allow_empty: bool = False) -> ReceiptDataset:
        if split in self.datasets:
            return self.datasets[split]
        if split == "predict":
            if not self.predict_input:
                raise UserInputError("predict needs input=DIR_OR_IMAGE")
            try:
                dataset: ReceiptDataset = ImageFolderDataset(root=self.predict_input)
            except FileNotFoundError as exc:
                raise UserInputError(f"{exc}; check input=DIR_OR_IMAGE") from None
        else:
            kwargs = dict(self.split_kwargs["train" if split == "train" else "val"])
            root = self._split_root(split)
            if root is not None:
                kwargs["root"] = root
            dataset = self._build_reader(split, kwargs)
            if len(dataset) == 0 and not allow_empty:
                raise UserInputError(
                    f"the {split} split of the {self._reader_name} reader is empty (root={root})"
                )
            if len(dataset) == 0:
                log.warning(
                    "the %s split of the %s reader is empty: validation is skipped", split, self._reader_name
                )
        dataset.max_image_pixels = self.max_image_pixels
        train = split == "train"
        dataset.transform = ReceiptTransform(
            self.transform_config, train=train, seed=self.seed if train else None
        )
        self.datasets[split] = dataset
        return dataset

    @property
    def _reader_name(self) -> str:
        return self.reader_cls.__name__

    def _build_reader(self, split: str, kwargs: dict[str, Any]) -> ReceiptDataset:
        cls = self.reader_cls
        try:
            inspect.signature(cls).bind(**kwargs)
        except TypeError as exc:  # a misspelt or foreign key in data.reader / data.<split>
            given = ", ".join(sorted(kwargs)) or "none"
            raise UserInputError(
                f"data.reader / data.{'train' if split == 'train' else 'val'} for {cls.__name__}: {exc} "
                f"(arguments given: {given})"
            ) from None
        try:
            return cls(**kwargs)
        except UserInputError as exc:
            root = kwargs.get("root")
            option = "train_root" if split == "train" else "val_root" if self.val_root else "root"
            raise UserInputError(f"{split} split (data.{option}={root}): {exc}") from None

    def prepare_data(self) -> None:
        if self.predict_input:  # built for predict: the train/val splits (e.g. synthetic renders) are unused
            return
        for split in ("train", "val"):
            if self._has_split(split):
                self.build(split, allow_empty=True).prepare()

    def _has_split(self, split: str) -> bool:
        return not self.reader_cls.needs_root or self._split_root(split) is not None

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and not (self._has_split("train") and self._has_split("val")):
            raise UserInputError(
                f"training with the {self._reader_name} reader needs data.train_root=DIR and "
                "data.val_root=DIR (each a split folder)"
            )
        if stage in ("fit", "validate", "test", None):
            if not self._has_split("val"):
                raise UserInputError(
                    f"the {self._reader_name} reader needs data.root=DIR (a split folder) to evaluate"
                )
            if stage in ("fit", None):
                self.build("train")
            # Training may run without validation; evaluating nothing is a mistake.
            self.build("val", allow_empty=stage in ("fit", None))
        if stage == "predict":
            self.build("predict")

    # -- cache ------------------------------------------------------------------------------
    def _cache_dir(self) -> str:
        return self.cache_config.dir or str(Path.home() / ".cache" / "ocr" / "targets")

    def target_cache(self) -> PolygonCache | None:
        """The node-wide target-map client, created lazily (``None`` when disabled)."""
        if not self.cache_config.enabled:
            return None
        if self._cache is None:
            self._cache = PolygonCache(
                max_size=self.cache_config.memory_items,
                persist_to_disk=True,
                cache_dir=self._cache_dir(),
                max_bytes=self.cache_config.max_bytes,
                memory_bytes=_CLIENT_MEMORY_BYTES,
            )
        return self._cache

    def _client(self, name: str, kind: int) -> CacheClient:
        """The node-wide client ``name`` (same folder and byte budget as the others), created lazily."""
        if name not in self._clients:
            self._clients[name] = CacheClient(
                name,
                kind,
                self._cache_dir(),
                self.cache_config.max_bytes,
                self.cache_config.memory_items,
                memory_bytes=_CLIENT_MEMORY_BYTES,
            )
        return self._clients[name]

    def sample_cache(self) -> CacheClient:
        """The whole-sample client (validation samples, ``ocr.data.sample_cache``)."""
        return self._client("sample", KIND_SAMPLE)

    def decoded_cache(self) -> CacheClient:
        """The training decoded-image client (``ocr.data.decoded_cache``)."""
        return self._client("decoded", KIND_DECODED)

    def _collate(self, split: str) -> DBCollateFN:
        wants_cache = split == "val" or (split == "train" and self.cache_config.train)
        use_cache = _deterministic(self.datasets[split]) and wants_cache and self.cache_config.enabled
        return DBCollateFN(
            self.target_params,
            with_targets=split != "predict",
            cache=self.target_cache() if use_cache else None,
            use_cache=use_cache,
            maps=TARGET_MAPS if split == "train" else EVAL_MAPS,
        )

    # -- device -----------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """uint8 images -> normalised float32, on the device (train, validate, test and predict).

        Keyed on the dtype: an empty batch of skipped samples (float32 zeros) passes through.
        """
        images = batch.get("images") if isinstance(batch, dict) else None
        if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
            config = self.transform_config
            batch["images"] = normalize_images(images, config.mean, config.std)
        self._prime_validation()
        return batch

    def _prime_validation(self) -> None:
        """On the epoch's last training batch, start the validation loader's next epoch.

        Its workers then start (or reset) and prefetch while the last training step runs, so the
        first validation batch does not wait for them. Only when validation follows this epoch.
        """
        trainer = self.trainer
        if trainer is None or not trainer.training or trainer.sanity_checking:
            return
        total = trainer.num_training_batches
        loop = trainer.fit_loop.epoch_loop
        if not isinstance(total, int) or loop.batch_progress.current.ready != total:
            return
        every = trainer.check_val_every_n_epoch
        if every is None or (trainer.current_epoch + 1) % every or trainer.val_check_batch != total:
            return
        loaders = trainer.val_dataloaders
        for loader in loaders if isinstance(loaders, list | tuple) else [loaders]:
            if isinstance(loader, TimedDataLoader):
                loader.prime()

    # -- loaders ----------------------------------------------------------------------------
    def _sample_cache(self, split: str, dataset: ReceiptDataset) -> Any:
        """Validation/test samples served whole from the node cache after the first epoch."""
        cache = self.cache_config
        if split != "val" or not (cache.enabled and cache.samples and _deterministic(dataset)):
            return dataset
        return CachedSampleDataset(dataset, self.sample_cache())

    def loader_plan(self) -> LoaderPlan:
        """Workers and prefetch depth (from the machine unless set); warns once on oversubscription."""
        if self._plan is None:
            trainer = self.trainer
            local = int(getattr(trainer, "num_devices", 0) or os.environ.get("LOCAL_WORLD_SIZE", 1))
            on_cpu = trainer is None or isinstance(trainer.accelerator, CPUAccelerator)
            self._plan = plan_loaders(
                self.loader.num_workers,
                self.loader.prefetch_factor,
                local_world_size=local,
                main_threads=torch.get_num_threads() if on_cpu else 1,
            )
            self._plan.warn_once()
        return self._plan

    def train_dataloader(self) -> DataLoader[Any]:
        """Seeded per-epoch order (resumable, DDP-sharded) with workers that span epochs."""
        dataset: Any = self.build("train")
        if self.cache_config.enabled and self.cache_config.decoded:
            dataset = DecodedImageDataset(dataset, self.decoded_cache())
        cfg, plan = self.loader, self.loader_plan()
        trainer = self.trainer
        kwargs = getattr(trainer, "distributed_sampler_kwargs", None) or {}
        if not kwargs and dist.is_available() and dist.is_initialized():
            kwargs = {"num_replicas": dist.get_world_size(), "rank": dist.get_rank()}
        sampler = EpochSampler(
            dataset,
            num_replicas=int(kwargs.get("num_replicas", 1)),
            rank=int(kwargs.get("rank", 0)),
            shuffle=True,
            seed=self.seed,
        )
        workers = plan.train_workers
        persistent = cfg.persistent_workers and workers > 0
        # The perf suite's injected slowdown turns the overlap off, to show that its gate bites.
        span = cfg.span_epochs and persistent and not slowdown_injected()
        limit = _limit_batches(trainer, sampler, cfg.batch_size)
        batches = EpochBatchSampler(sampler, cfg.batch_size, span=span, batches_per_epoch=limit)
        return EpochSpanningDataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=workers,
            collate_fn=self._collate("train"),
            persistent_workers=persistent,
            pin_memory=cfg.pin_memory,
            prefetch_factor=plan.prefetch_factor if workers > 0 else None,
            worker_init_fn=_worker_init,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _loader(self, split: str) -> DataLoader[Any]:
        """Evaluation and predict: the samples in order (training: :meth:`train_dataloader`)."""
        dataset = self._sample_cache(split, self.build(split))
        cfg = self.loader
        workers = self.loader_plan().val_workers
        sampler = None
        if dist.is_available() and dist.is_initialized():
            # Lightning's default sampler pads the last shard with repeats, which would count
            # some images twice in the metric: evaluate each image exactly once instead.
            sampler = UnrepeatedDistributedSamplerWrapper(SequentialSampler(dataset), shuffle=False)
        return TimedDataLoader(
            dataset,
            batch_size=cfg.val_batch_size or cfg.batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=self._collate(split),
            persistent_workers=cfg.persistent_workers and workers > 0,
            pin_memory=cfg.pin_memory,
            prefetch_factor=cfg.prefetch_factor if workers > 0 else None,
            worker_init_fn=_worker_init,
            drop_last=False,
        )

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader("val")

    def predict_dataloader(self) -> DataLoader[Any]:
        return self._loader("predict")
