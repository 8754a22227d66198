"""Report sections, in order. Each turns the analysis into Markdown, or says what is missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocr.report import fmt
from ocr.report.context import Analysis
from ocr.report.epoch_perf import EpochPerf, partial_text
from ocr.report.figures import STATS, time_saved
from ocr.report.markdown import not_available, plot_link, table
from ocr.report.rules.memory import describe, memory_trend
from ocr.report.run import as_int


@dataclass
class SectionInput:
    analysis: Analysis
    plots: dict[str, tuple[Path | None, str]] = field(default_factory=dict)  # name -> (PNG, why missing)
    base: Path = Path(".")  # the Markdown file's folder: plot links are relative to it

    def plot(self, name: str, alt: str) -> str:
        return plot_link(self.plots, name, alt, self.base, "plot: ")


Section = Callable[[SectionInput], str]


def _no_perf(a: Analysis) -> str:
    return not_available(f"the {a.run.source} source has no perf data (no perf_summary.json, no perf/* keys)")


def _hardware(hw: dict[str, Any]) -> str:
    if not hw:
        return fmt.NA
    cores = f"{hw['cpu_count']} cores" if hw.get("cpu_count") else "cores unknown"
    if hw.get("cpu_affinity") and hw.get("cpu_affinity") != hw.get("cpu_count"):
        cores += f", {hw['cpu_affinity']} usable"
    ram = f", {hw['memory_gb']} GB RAM" if hw.get("memory_gb") else ""
    gpu = (
        f"; GPU: {hw['gpu']} x{hw.get('gpu_count', 1)}"
        + (f" ({hw['gpu_memory_gb']} GB)" if hw.get("gpu_memory_gb") else "")
        if hw.get("gpu")
        else "; GPU: none"
    )
    host = f" on `{hw['hostname']}`" if hw.get("hostname") else ""
    return f"{hw.get('cpu', 'CPU')} ({cores}){ram}{gpu}{host}"


def _epochs_measured(a: Analysis, phase: str) -> str:
    eps = a.epochs(phase)
    cut = [f"epoch {e.epoch} partial: {partial_text(e, eps)}" for e in eps if e.partial]
    return f"{fmt.PHASE_LABEL.get(phase, phase)} {len(eps)}" + (f" ({'; '.join(cut)})" if cut else "")


def _epoch_cell(e: EpochPerf | None, epoch: int) -> str:
    """The epoch number, marked when that epoch was cut short."""
    return f"{epoch} (partial)" if e is not None and e.partial else str(epoch)


def header(s: SectionInput) -> str:
    a = s.analysis
    info = a.run.info
    epochs = ", ".join(_epochs_measured(a, p) for p in a.perf.phases) or fmt.NA
    rows = [
        ("source", f"{a.run.source}: `{a.run.location}`"),
        ("run", info.get("name", fmt.NA)),
        ("run started", info.get("created") or fmt.NA),
        ("report generated", datetime.now(UTC).isoformat(timespec="seconds")),
        ("run time", fmt.sec(info.get("runtime_s")) if info.get("runtime_s") else fmt.NA),
        ("hardware", _hardware(info.get("hardware") or {})),
        ("versions", ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items() if v) or fmt.NA),
        ("key config", ", ".join(f"{k}={v}" for k, v in (info.get("config") or {}).items()) or fmt.NA),
        ("epochs measured", epochs),
        ("perf data from", a.perf.origin if a.has_perf else fmt.NA),
    ]
    return f"# Performance report: {info.get('name', a.run.location)}\n\n" + table(("", ""), rows, "ll")


HEADLINES = (
    ("train.time_per_sample_s", "training time per sample"),
    ("validate.time_per_sample_s", "validation time per sample"),
    ("val_vs_train_ratio", "validation / training time per sample"),
    ("train.samples_per_s", "training throughput"),
    ("train.data_wait_share", "training data-wait share"),
    ("validate.data_wait_share", "validation data-wait share"),
    ("cache.hit_rate", "target-cache hit rate"),
    ("memory.rss_peak_mb", "peak main-process RSS"),
    ("memory.workers_rss_peak_mb", "peak workers RSS"),
    ("memory.gpu_peak_mb", "peak GPU memory"),
    ("val.hmean", "validation hmean (last epoch)"),
)


def headlines(s: SectionInput) -> str:
    a = s.analysis
    rows = [(label, fmt.value(key, a.fig(key)), f"`{key}`") for key, label in HEADLINES]
    note = (
        "Per-phase figures are the median over the steady epochs (all but the first, which pays worker "
        "start-up, JIT compilation and cache filling, and none cut short by the end of the run)."
    )
    return (
        "## Headline figures\n\n"
        + table(("figure", "value", "key in the JSON export"), rows, "lrl")
        + "\n\n"
        + note
    )


def bottlenecks(s: SectionInput) -> str:
    if not s.analysis.has_perf:
        return "## Bottleneck analysis\n\n" + _no_perf(s.analysis)
    parts = [
        "## Bottleneck analysis\n",
        "Findings ranked by impact (roughly the share of the epoch at stake).",
    ]
    for i, f in enumerate(s.analysis.findings, 1):
        evidence = "\n".join(f"   - {line}" for line in f.evidence)
        parts.append(
            f"\n{i}. **{f.title}** ({f.severity}; rule `{f.rule}`)\n   - Evidence:\n"
            + "\n".join("  " + line for line in evidence.splitlines())
            + f"\n   - Recommendation: {f.recommendation}"
        )
    limits = s.analysis.rule_limits.to_dict()
    parts.append(
        "\nRule limits: "
        + ", ".join(f"`{k}={v:g}`" for k, v in limits.items())
        + " (`--rule-limit NAME=VALUE`)."
    )
    return "\n".join(parts)


def _stats_row(a: Analysis, prefix: str, name: str) -> tuple[str, ...]:
    """A stage's cells: its name, the mean/median/p95/p99 figures and its share."""
    return (
        f"`{name}`",
        *(fmt.ms(a.fig(f"{prefix}{name}.{st}_s")) for st in STATS),
        fmt.pct(a.fig(f"{prefix}{name}.share")),
    )


def _stage_table(a: Analysis, phase: str) -> str:
    if not a.has_perf:
        return _no_perf(a)
    if not a.epochs(phase):
        return not_available(f"no {fmt.PHASE_LABEL[phase]} epochs in this run")
    prefix = f"{phase}.stage."
    names = sorted(
        {k[len(prefix) :].split(".")[0] for k in a.figures if k.startswith(prefix)},
        key=lambda n: (-(a.fig(f"{prefix}{n}.share") or 0), n),  # ties by name: the same report every run
    )
    if not names:
        return not_available(f"no {phase} stage statistics")
    rows = [_stats_row(a, prefix, n) for n in names]
    covered = a.fig(f"{phase}.attributed_share")
    if covered is not None:
        rows.append(("_unattributed_", "", "", "", "", fmt.pct(max(0.0, 1 - covered))))
    wall, per_sample = a.fig(f"{phase}.wall_s"), a.fig(f"{phase}.time_per_sample_s")
    lead = (
        f"Epoch wall time {fmt.sec(wall)}, {fmt.ms(per_sample)} per sample (steady-epoch medians). "
        "Times are per batch (metric_compute: once per epoch); share = the stage's total / epoch "
        "wall time.\n\n"
    )
    return lead + table(("stage", "mean", "median", "p95", "p99", "share of epoch"), rows)


def train_stages(s: SectionInput) -> str:
    return "## Training: time per stage\n\n" + _stage_table(s.analysis, "train")


def validate_stages(s: SectionInput) -> str:
    return (
        "## Validation: time per stage\n\n"
        + _stage_table(s.analysis, "validate")
        + "\n\n### Stage breakdown per epoch\n\n"
        + s.plot("stages_per_epoch", "stacked time per stage and epoch, training and validation")
    )


def worker_stages(s: SectionInput) -> str:
    a = s.analysis
    rows = []
    for phase in a.perf.phases:
        prefix = f"{phase}.worker."
        for n in sorted({k[len(prefix) :].split(".")[0] for k in a.figures if k.startswith(prefix)}):
            rows.append((phase, *_stats_row(a, prefix, n)))
    body = (
        "Measured inside the DataLoader workers, in parallel with the main process: they reach the epoch "
        "only as data wait. Times are per sample, except collate (per batch); share = the stage's mean per "
        "sample (collate divided by the batch size) / the sum over the worker stages.\n\n"
        + table(("phase", "stage", "mean", "median", "p95", "p99", "share of worker time"), rows, "llrrrrr")
        if rows
        else not_available("no worker-stage timings (no perf data from the workers in this source)")
    )
    return (
        "## Worker stages (DataLoader workers)\n\n"
        + body
        + "\n\n### Batch-time distribution per stage\n\n"
        + s.plot("stage_distribution", "median, mean, p95 and p99 per stage")
    )


POOL_STAGES = ("postprocess", "cleval", "iou", "decode")  # the pool's own stages: the last columns


def evaluator_pool(s: SectionInput) -> str:
    a = s.analysis
    rows = []
    for e in a.perf.epochs:
        ev = e.evaluator
        if not ev:
            continue
        images = ev.get("images") or e.samples
        stages = ev.get("stages") or {}

        def per_image(seconds: Any, n: Any = images) -> str:
            return fmt.ms(seconds / n) if isinstance(seconds, int | float) and n else fmt.NA

        handoff = e.stages.get("handoff", {}).get("total")
        rows.append(
            (
                e.phase,
                str(e.epoch),
                str(as_int(ev.get("workers")) or fmt.NA),
                per_image(handoff, e.samples),
                per_image(ev.get("drain_s"), 1),
                fmt.pct(ev.get("busy_share")),
                fmt.pct(ev.get("hidden_share")),
                *(per_image(stages.get(st)) for st in POOL_STAGES),
            )
        )
    body = (
        "Post-processing and the CLEval/IoU updates ran in a pool of evaluator processes. hand-off = "
        "main-process time per image to copy the encoded map into a slot; drain = the epoch-end wait for "
        "the last images (once per epoch); busy = the pool's work / its capacity (processes x epoch wall "
        "time); hidden = share of the pool's work the main process did not wait for; the last four "
        "columns are the pool's time per image by stage.\n\n"
        + table(
            ("phase", "epoch", "evaluators", "hand-off", "drain", "busy", "hidden", *POOL_STAGES),
            rows,
            "llrrrrrrrrr",
        )
        if rows
        else not_available("no evaluator-pool figures (evaluation ran in-process, or no perf data)")
    )
    return "## Evaluator pool\n\n" + body


def per_sample(s: SectionInput) -> str:
    a = s.analysis
    train = {e.epoch: e for e in a.epochs("train")}
    val = {e.epoch: e for e in a.epochs("validate")}
    if not train and not val:
        return "## Training vs validation time per sample\n\n" + _no_perf(a)
    rows = []
    for epoch in sorted(set(train) | set(val)):
        t, v = train.get(epoch), val.get(epoch)
        tt, vt = (t.time_per_sample_s if t else None), (v.time_per_sample_s if v else None)
        rows.append(
            (
                _epoch_cell(t if t and t.partial else v, epoch),
                fmt.ms(tt),
                fmt.ms(vt),
                f"{vt / tt:.2f}x" if tt and vt else fmt.NA,
                fmt.value("samples_per_s", t.samples_per_s if t else None),
                fmt.value("samples_per_s", v.samples_per_s if v else None),
            )
        )
    ratio = a.fig("val_vs_train_ratio")
    cut = [e for e in a.perf.epochs if e.partial and e.phase in ("train", "validate")]
    lead = (
        f"Steady state: training {fmt.ms(a.fig('train.time_per_sample_s'))} per sample, validation "
        f"{fmt.ms(a.fig('validate.time_per_sample_s'))}, ratio {f'{ratio:.2f}x' if ratio else fmt.NA} "
        "(device-seconds per sample: wall x world size / samples)."
        + "".join(
            f" {fmt.PHASE_LABEL.get(e.phase, e.phase).capitalize()} epoch {e.epoch} was cut short "
            f"({partial_text(e, a.epochs(e.phase))}): its figures time the epoch's first batches, not the "
            "epoch, and are left out of the steady state."
            for e in cut
        )
        + "\n\n"
    )
    return (
        "## Training vs validation time per sample\n\n"
        + lead
        + table(
            (
                "epoch",
                "training / sample",
                "validation / sample",
                "val/train",
                "training samples/s",
                "validation samples/s",
            ),
            rows,
        )
        + "\n\n"
        + s.plot("time_per_sample", "time per sample per epoch, training and validation")
    )


def data_wait(s: SectionInput) -> str:
    a = s.analysis
    if not a.has_perf:
        return "## Data wait\n\n" + _no_perf(a)
    rows = [
        (
            fmt.PHASE_LABEL.get(e.phase, e.phase),
            _epoch_cell(e, e.epoch),
            fmt.pct(e.data_wait_share),
            fmt.ms(e.stages.get("data_wait", {}).get("median")),
            fmt.ms(e.stages.get("compute", {}).get("median")),
            ", ".join(f"{k} {fmt.pct(v)}" for k, v in sorted(e.rank_data_wait_share.items())) or fmt.NA,
        )
        for e in a.perf.epochs
    ]
    lead = (
        f"Share of the epoch the main process spent blocked on the DataLoader (rule limit "
        f"{fmt.pct(a.rule_limits.data_wait_share)}); workers: {a.config.get('num_workers', fmt.NA)}, "
        f"cores: {a.cpu_count or fmt.NA}.\n\n"
    )
    return (
        "## Data wait\n\n"
        + lead
        + table(
            ("phase", "epoch", "data-wait share", "median data wait", "median compute", "per rank"),
            rows,
            "lrrrrl",
        )
    )


# The memory table's columns after phase and epoch: (title, epoch memory reading, format).
MEMORY_COLUMNS: tuple[tuple[str, str, Callable[[float | None], str]], ...] = (
    ("RSS", "rss_mb", fmt.mb),
    ("RSS peak", "rss_peak_mb", fmt.mb),
    ("workers RSS", "workers_rss_mb", fmt.mb),
    ("workers peak", "workers_rss_peak_mb", fmt.mb),
    ("processes", "workers", fmt.num),
    ("GPU allocated", "gpu_allocated_mb", fmt.mb),
    ("GPU peak", "gpu_peak_mb", fmt.mb),
)


def memory(s: SectionInput) -> str:
    a = s.analysis
    epochs = [e for e in a.perf.epochs if e.memory]
    if not epochs:
        return "## Memory\n\n" + not_available("no memory readings in this source")
    rows = [
        (
            fmt.PHASE_LABEL.get(e.phase, e.phase),
            e.epoch,
            *(show(e.memory.get(key)) for _, key, show in MEMORY_COLUMNS),
        )
        for e in epochs
    ]
    gpu = any("gpu_peak_mb" in e.memory for e in epochs)
    lead = (
        f"Peaks over the run: main process {fmt.mb(a.fig('memory.rss_peak_mb'))}, workers "
        f"{fmt.mb(a.fig('memory.workers_rss_peak_mb'))}, GPU "
        + (fmt.mb(a.fig("memory.gpu_peak_mb")) if gpu else not_available("no CUDA device in this run"))
        + ". Worker RSS is summed over worker processes (shared pages counted in each).\n\n"
        + _memory_trends(a)
    )
    return (
        "## Memory\n\n"
        + lead
        + table(("phase", "epoch", *(title for title, _, _ in MEMORY_COLUMNS)), rows, "lrrrrrrrr")
        + "\n\n"
        + s.plot("memory", "memory over time")
    )


def _memory_trends(a: Analysis) -> str:
    """What the memory_growth rule compared, whether or not it fired."""
    lines = []
    for key in ("rss_mb", "workers_rss_mb"):
        trend = memory_trend(a, key)
        if trend is None:
            continue
        limit = f"the `memory_growth` rule limit ({fmt.pct(a.rule_limits.memory_growth)})"
        if trend.growth <= a.rule_limits.memory_growth:
            verdict = f"below {limit}"
        elif not trend.sustained:
            verdict = f"above {limit} but not sustained (the later half of the window grows too slowly)"
        else:
            verdict = f"sustained growth above {limit}: see the bottleneck findings"
        lines.append(f"- {trend.who}: " + "; ".join(describe(trend)) + f". Verdict: {verdict}.")
    if not lines:
        return ""
    return "Growth check (rule `memory_growth`, one reading per epoch):\n\n" + "\n".join(lines) + "\n\n"


def cache(s: SectionInput) -> str:
    a = s.analysis
    used = [e for e in a.perf.epochs if e.cache_hit_rate is not None]
    if not used:
        why = (
            "the target cache was off (data.cache.enabled=false)"
            if a.config.get("cache_enabled") is False
            else "no cache lookups were recorded"
        )
        return "## Target cache\n\n" + not_available(why)
    rows = [
        (
            fmt.PHASE_LABEL.get(e.phase, e.phase),
            e.epoch,
            fmt.pct(e.cache_hit_rate),
            fmt.pct(e.sample_cache_hit_rate) if e.sample_cache_hit_rate is not None else "–",
            fmt.num(e.samples),
            fmt.ms(e.worker_stages.get("targets", {}).get("mean")),
            fmt.ms(e.worker_stages.get("targets", {}).get("p95")),
        )
        for e in used
    ]
    lines = [
        f"Hit rate over the run: {fmt.pct(a.fig('cache.hit_rate'))} ({fmt.num(a.fig('cache.hits'))} hits, "
        f"{fmt.num(a.fig('cache.misses'))} misses; one lookup per sample).",
    ]
    estimates = time_saved(a.perf.epochs)
    if estimates:
        lines.append(
            f"\nEstimated time saved (net): **{fmt.sec(a.fig('cache.time_saved_s'))} of worker time**."
        )
        for est in estimates:
            lines.append(
                f"- {est.phase}: {est.hits} hits x {fmt.ms(est.miss_cost_s)} "
                f"(a miss: mean `targets` time in epoch "
                f"{est.miss_epoch}, hit rate {fmt.pct(est.miss_rate)}) = {fmt.sec(est.gross_s)} gross, less "
                f"{est.hits} x {fmt.ms(est.hit_cost_s)} (a hit: epoch {est.hit_epoch}, hit rate "
                f"{fmt.pct(est.hit_rate)}) = {fmt.sec(est.net_s)} net."
                + (" **Hits cost more than computing the targets.**" if est.net_s < 0 else "")
            )
        lines.append(
            "\nThis is worker time, spread over the workers: it shortens the epoch only when the workers "
            "were the bottleneck (see data wait). It is rough when the miss epoch also had hits, or when an "
            "epoch's mean carries a one-off outlier (see the p95 column)."
        )
    else:
        lines.append(
            "\n" + not_available("time saved: no epoch dominated by misses to estimate a miss's cost")
        )
    header = (
        "phase",
        "epoch",
        "hit rate",
        "sample-cache hit rate",
        "samples",
        "targets mean / sample",
        "targets p95",
    )
    return "## Target cache\n\n" + "\n".join(lines) + "\n\n" + table(header, rows)


def accuracy(s: SectionInput) -> str:
    run = s.analysis.run
    hmean = run.series("val/hmean")
    if hmean.empty:
        return "## Validation hmean per epoch\n\n" + not_available("val/hmean was not logged in this run")
    by_epoch = {
        key: {as_int(r.epoch): r.value for r in run.series(key).itertuples()}
        for key in ("val/precision", "val/recall")
    }
    rows = [
        (
            fmt.num(as_int(r.epoch)),
            fmt.num(r.value, 4),
            *(fmt.num(by_epoch[key].get(as_int(r.epoch)), 4) for key in ("val/precision", "val/recall")),
        )
        for r in hmean.itertuples()
    ]
    return (
        "## Validation hmean per epoch\n\n"
        + table(("epoch", "hmean", "precision", "recall"), rows)
        + "\n\n"
        + s.plot("hmean", "validation hmean, precision and recall per epoch")
    )


def notes(s: SectionInput) -> str:
    a = s.analysis
    lines = [f"- {n}" for n in a.run.notes]
    origin = a.perf.origin if a.has_perf else "none"
    lines.append(
        f"- perf data from: {origin}; metrics table: {len(a.run.metrics)} rows, {len(a.run.keys())} keys"
    )
    return "## Notes\n\n" + "\n".join(lines)


# The report's sections, in order; a new section is a function above plus one entry here.
SECTIONS: tuple[Section, ...] = (
    header,
    headlines,
    bottlenecks,
    train_stages,
    validate_stages,
    worker_stages,
    evaluator_pool,
    per_sample,
    data_wait,
    memory,
    cache,
    accuracy,
    notes,
)


def render(s: SectionInput) -> str:
    return "\n\n".join(fn(s) for fn in SECTIONS) + "\n"
