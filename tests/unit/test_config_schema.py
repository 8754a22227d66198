"""Start-up config validation: one ``ocr: error: <key>=<value>: <allowed>`` line and exit 2.

The cases the issue lists go through the real CLI entry point (``ocr.cli.main``, which runs the
Hydra task): in-process for the table, plus one real ``ocr`` subprocess for the full path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ocr.cli import main
from ocr.errors import UserInputError
from ocr.schema import PRECISIONS, DataConfig, TaskKnobs, allowed_for, check_config
from tests.helpers import compose_config, run_cli

CASES = [
    # (override, the one line the user gets)
    ("data.loader.batch_size=-1", "data.loader.batch_size=-1: an integer >= 1"),
    ("data.loader.batch_size=0", "data.loader.batch_size=0: an integer >= 1"),
    ("data.loader.batch_size=2.5", "data.loader.batch_size=2.5: an integer >= 1"),
    ("data.loader.batch_size=four", "data.loader.batch_size=four: an integer >= 1"),
    ("data.loader.num_workers=-1", "data.loader.num_workers=-1: an integer >= 0, or null"),
    ("data.image_size=0", "data.image_size=0: an integer >= 32"),
    ("trainer.max_epochs=four", "trainer.max_epochs=four: an integer >= -1, or null"),
    ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5: an integer >= -1, or null"),
    ("data.cache.max_bytes=false", "data.cache.max_bytes=false: an integer >= 1"),
    ("data.cache.memory_items=true", "data.cache.memory_items=true: an integer >= 0"),
    ("data.augment.blur_p=1.5", "data.augment.blur_p=1.5: a number >= 0 and <= 1"),
    ("data.augment.scale=[0.8]", "data.augment.scale=[0.8]: a list of 2 numbers, each > 0"),
    ("data.targets.shrink_ratio=1.0", "data.targets.shrink_ratio=1.0: a number > 0 and < 1"),
    ("data.targets.formula=fast", "data.targets.formula=fast: one of db, exact"),
    ("model.optimizer.lr=0", "model.optimizer.lr=0.0: a number > 0"),
    ("model.postprocess.box_thresh=2", "model.postprocess.box_thresh=2.0: a number >= 0 and <= 1"),
    ("trainer.devices=0", "trainer.devices=0: an integer >= 1, -1, auto, or a list of ids"),
    (
        "trainer.precision=7",
        "trainer.precision=7: one of " + ", ".join(dict.fromkeys(str(p) for p in PRECISIONS)),
    ),
]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> object:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", os.environ.get("HYDRA_FULL_ERROR", "0"))

    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main(["train", *args, f"hydra.run.dir={tmp_path / 'run'}"])
        return int(info.value.code or 0)

    return run


@pytest.mark.parametrize(("override", "line"), CASES, ids=[c[0] for c in CASES])
def test_bad_value_is_one_line_and_exit_2(
    cli: object, capsys: pytest.CaptureFixture[str], override: str, line: str, tmp_path: Path
) -> None:
    assert cli(override) == 2  # type: ignore[operator]
    err = capsys.readouterr().err
    assert f"ocr: error: {line}\n" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "config.yaml").exists()  # stopped before the task did anything


OLD_READER_LINE = (
    "data.reader=sroie: a reader is now selected by class; pick the shipped config with data=sroie, "
    "or write reader: {_target_: ocr.data.datasets.sroie.SROIEDataset} in your data config "
    "(data.reader._target_=ocr.data.datasets.sroie.SROIEDataset on the command line)"
)


def test_old_reader_name_override_names_the_target_form(
    cli: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli("data=sroie", "data.reader=sroie") == 2  # type: ignore[operator]
    err = capsys.readouterr().err
    assert f"ocr: error: {OLD_READER_LINE}\n" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_old_reader_name_in_a_user_data_config_names_the_target_form(
    cli: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A data config written for the release before: ``reader: sroie`` fails while composing."""
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "receipts.yaml").write_text(
        "defaults:\n  - /schema/data@_here_: base\n  - _self_\nreader: sroie\n"
    )
    assert cli(f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "data=receipts") == 2  # type: ignore[operator]
    err = capsys.readouterr().err
    assert f"ocr: error: {OLD_READER_LINE}\n" in err and "Traceback" not in err


def test_real_console_script_stops_before_building_anything(tmp_path: Path) -> None:
    proc = run_cli(["train", "data.loader.num_workers=-1", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "ocr: error: data.loader.num_workers=-1: an integer >= 0, or null\n" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.parametrize("task", ["train", "validate", "predict", "export"])
def test_shipped_configs_pass_their_own_checks(task: str, tmp_path: Path) -> None:
    overrides = {
        "train": [],
        "validate": ["ckpt_path=x"],
        "predict": ["ckpt_path=x", "input=y"],
        "export": [],
    }
    if task == "export":  # no data group
        check_config(compose_config(task, tmp_path, ["output=m.onnx"]))
    for data in ("synthetic", "sroie", "json") if task != "export" else ():
        check_config(compose_config(task, tmp_path, [*overrides[task], f"data={data}"]))
    check_config(compose_config("train", tmp_path, ["experiment=sroie"]))


def test_shared_data_defaults_are_written_once(tmp_path: Path) -> None:
    """shrink_ratio & co. come from the schema: a data YAML states one only where it differs (the
    synthetic CPU recipe's 0.6), and every group gets the rest."""
    configs = Path(__file__).resolve().parents[2] / "configs" / "data"
    for yaml in configs.glob("*.yaml"):
        assert "max_bytes" not in yaml.read_text(), yaml
        assert "shrink_ratio: 0.4" not in yaml.read_text(), yaml
    for data in ("sroie", "json"):
        cfg = compose_config("train", tmp_path, [f"data={data}"])
        assert cfg.data.targets.shrink_ratio == DataConfig().targets.shrink_ratio == 0.4
        assert cfg.data.cache.max_bytes == 2 * 1024**3


def test_validate_overrides_are_checked(tmp_path: Path) -> None:
    cfg = compose_config("validate", tmp_path, ["ckpt_path=x", "postprocess.thresh=-0.1"])
    with pytest.raises(UserInputError, match=r"^postprocess\.thresh=-0\.1: a number >= 0 and <= 1, or null$"):
        check_config(cfg)
    cfg = compose_config("validate", tmp_path, ["ckpt_path=x", "image_size=16"])
    with pytest.raises(UserInputError, match=r"^image_size=16: an integer >= 32, or null$"):
        check_config(cfg)


@pytest.mark.parametrize(
    ("task", "override", "line"),
    [
        ("predict", "threads=0", "threads=0: an integer >= 1, or null"),
        ("predict", "threads=two", "threads=two: an integer >= 1, or null"),
        ("predict", "pad_multiple=-1", "pad_multiple=-1: an integer >= 0, or null"),
        ("validate", "evaluator.workers=-1", "evaluator.workers=-1: an integer >= 0, or null"),
        (
            "validate",
            "evaluator.handoff=int8",
            "evaluator.handoff=int8: one of auto, uint8, float16, float32, or null",
        ),
        (
            "validate",
            "evaluator.copy_thread=sometimes",
            "evaluator.copy_thread=sometimes: true or false, or null",
        ),
        ("export", "opset=3", "opset=3: an integer >= 7"),
    ],
)
def test_task_options_are_checked(task: str, override: str, line: str, tmp_path: Path) -> None:
    extra = {"predict": ["ckpt_path=x", "input=y"], "validate": ["ckpt_path=x"], "export": ["output=m.onnx"]}
    cfg = compose_config(task, tmp_path, [*extra[task], override])
    with pytest.raises(UserInputError) as info:
        check_config(cfg)
    assert str(info.value) == line


@pytest.mark.parametrize("devices", ["auto", "-1", "2", "'0,1'", "[0,1]"])
def test_every_form_of_trainer_devices_lightning_takes_passes(devices: str, tmp_path: Path) -> None:
    check_config(
        compose_config("train", tmp_path, [f"trainer.devices={devices}", "trainer.precision=16-mixed"])
    )


def test_bool_is_never_an_integer() -> None:
    """Kept on purpose: Python's bool is an int, so the range check itself refuses it."""
    cfg = OmegaConf.create({"trainer": {"log_every_n_steps": True, "limit_val_batches": 1}})
    with pytest.raises(UserInputError, match=r"^trainer\.log_every_n_steps=true: an integer >= 1$"):
        check_config(cfg)


def test_every_numeric_knob_has_a_range() -> None:
    """A number a user can set without a range would let 0 or -1 through to a library traceback."""
    import dataclasses
    from typing import get_type_hints

    missing = []

    def numeric(hint: object) -> bool:
        return any(t in str(hint) for t in ("int", "float"))

    def walk(schema: type, prefix: str) -> None:
        hints = get_type_hints(schema)
        for f in dataclasses.fields(schema):
            sub, key = hints[f.name], prefix + f.name
            if dataclasses.is_dataclass(sub):
                walk(sub, key + ".")  # type: ignore[arg-type]
            elif numeric(sub) and key != "data.seed" and allowed_for(key) is None:
                missing.append(key)

    walk(TaskKnobs, "")
    assert missing == []


@pytest.mark.parametrize("key", ["loader.batch_size", "data.loader.batch_size"])
def test_a_key_hydra_names_without_its_group_gets_the_group_once(key: str) -> None:
    from omegaconf.errors import ValidationError

    from ocr.schema import composition_error

    cause = ValidationError("Value 'four' of type 'str' could not be converted to Integer")
    cause.full_key, cause.value = key, "four"
    assert composition_error(RuntimeError("x")) is None  # no ValidationError in the chain
    wrapped = RuntimeError("composing failed")
    wrapped.__cause__ = cause
    assert str(composition_error(wrapped)) == "data.loader.batch_size=four: an integer >= 1"
