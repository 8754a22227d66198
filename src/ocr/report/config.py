"""Key configuration and hardware, extracted the same way from every source's layout.

Our ``perf_summary.json`` nests hyper-parameters as ``model.net...``/``data.loader...``; the
Lightning W&B logger flattens the module's and datamodule's hparams to the top level
(``net.backbone``, ``loader.batch_size``); Hydra's ``config.yaml`` nests them like the summary.
Looking each key up along several paths keeps the sources small.
"""

from __future__ import annotations

from typing import Any

from ocr.perf.schema import reader_label

# key config name -> dotted paths to try, in order
KEY_CONFIG: dict[str, tuple[str, ...]] = {
    "reader": ("data.reader", "reader"),
    "backbone": ("model.net.backbone", "net.backbone"),
    "image_size": ("data.image_size", "image_size"),
    "batch_size": ("data.loader.batch_size", "loader.batch_size"),
    "val_batch_size": ("data.loader.val_batch_size", "loader.val_batch_size"),
    "num_workers": ("data.loader.num_workers", "loader.num_workers"),
    "cache_enabled": ("data.cache.enabled", "cache.enabled"),
    "target_formula": ("data.targets.formula", "targets.formula"),
    "augment": ("data.augment.enabled", "augment.enabled"),
    "precision": ("trainer.precision", "precision"),
    "devices": ("trainer.devices", "devices"),
    "accelerator": ("trainer.accelerator", "accelerator"),
    "max_epochs": ("trainer.max_epochs", "max_epochs"),
}


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def key_config(*trees: dict[str, Any] | None) -> dict[str, Any]:
    """The key configuration found in any of ``trees`` (first hit wins)."""
    out: dict[str, Any] = {}
    for name, paths in KEY_CONFIG.items():
        for tree in trees:
            if not tree:
                continue
            value = next((v for v in (lookup(tree, p) for p in paths) if v is not None), None)
            if name == "reader":  # {_target_: ...} in a config, a name in a perf summary
                value = reader_label(value)
            if value is not None:
                out[name] = value
                break
    return out


def hardware_from_wandb(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Hardware from W&B's environment record / ``wandb-metadata.json`` (protobuf JSON names)."""
    if not metadata:
        return {}
    out: dict[str, Any] = {}
    for key, name in (("host", "hostname"), ("os", "platform")):
        if metadata.get(key):
            out[name] = metadata[key]
    cpu = metadata.get("cpu")
    if isinstance(cpu, dict) and cpu.get("model"):
        out["cpu"] = cpu["model"]
    count = metadata.get("cpu_count_logical") or metadata.get("cpu_count")
    if count:
        out["cpu_count"] = int(count)
    total = (metadata.get("memory") or {}).get("total")
    if total:
        out["memory_gb"] = round(int(total) / 1024**3, 2)
    gpu = metadata.get("gpu") or metadata.get("gpu_type")
    out["cuda"] = bool(gpu)
    if gpu:
        out["gpu"] = gpu
        out["gpu_count"] = int(metadata.get("gpu_count") or 1)
    return out
