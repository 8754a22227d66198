"""A W&B run on a server, through the public ``wandb.Api``.

``run.scan_history()`` pages through every logged row (``run.history()`` samples 500 rows, which
would drop epochs); ``run.summary``, ``run.config`` and ``run.metadata`` (the run's
``wandb-metadata.json``) complete the run information. The target is ``wandb://ENTITY/PROJECT/ID``
(``--run-id ID --project P [--entity E]`` on the command line builds it).
"""

from __future__ import annotations

from typing import Any

from ocr.report.errors import ReportError
from ocr.report.run import RunData
from ocr.report.sources.source import Source
from ocr.report.sources.wandb_common import history_to_long, wandb_info

SCHEME = "wandb://"


def target_for(run_id: str, project: str, entity: str | None = None) -> str:
    return SCHEME + "/".join(p for p in (entity, project, run_id) if p)


def _plain(value: Any) -> Any:
    """Summary values can be W&B's nested dict-likes (and dicts of them); make them plain dicts."""
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load(target: str) -> RunData:
    path = target[len(SCHEME) :].strip("/")
    if path.count("/") not in (1, 2):
        raise ReportError(f"{target}: expected wandb://ENTITY/PROJECT/RUN_ID or wandb://PROJECT/RUN_ID")
    import wandb

    try:
        run = wandb.Api().run(path)
        rows = list(run.scan_history())
        summary = _plain(run.summary)
        config = dict(run.config)
        metadata = run.metadata
    except Exception as exc:  # wandb raises its own CommError / ValueError hierarchy
        raise ReportError(
            f"{target}: cannot read the W&B run ({type(exc).__name__}: {exc}); check --run-id, --project, "
            "--entity and your W&B login"
        ) from exc
    notes = [] if metadata else ["the run has no wandb-metadata.json: hardware unknown"]
    versions = {"python": metadata.get("python")} if metadata else {}
    info = wandb_info(
        name=str(getattr(run, "name", None) or getattr(run, "id", path)),
        config=config,
        metadata=metadata,
        created=getattr(run, "created_at", None),
        versions=versions,
        extra={
            "wandb": {"id": run.id, "project": run.project, "entity": run.entity, "state": run.state},
            "runtime_s": summary.get("_runtime"),
        },
    )
    extra = {"summary": summary, "wandb_config": config}
    return RunData("wandb-online", target, history_to_long(rows), info, None, notes, extra)


SOURCE = Source(
    "wandb-online",
    detect=lambda target: target.startswith(SCHEME),
    describe="wandb://ENTITY/PROJECT/RUN_ID (needs a server)",
    load=load,
)
