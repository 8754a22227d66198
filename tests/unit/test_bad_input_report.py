"""``ocr report`` on unreadable inputs: one line naming the file and the fix, exit status 2."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from ocr.report.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report" / "tb_run"
BINARY = bytes(range(256)) * 8  # not UTF-8 text
GZIP = gzip.compress(b"step,epoch,val/hmean\n" * 50)  # e.g. a compressed copy under the old name


def run_dir(tmp_path: Path, **files: bytes) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    for name, data in files.items():
        (run / name.replace("__", ".")).write_bytes(data)
    return run


def report(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int | str | None, str]:
    with pytest.raises(SystemExit) as info:
        main([str(run), "--output", str(tmp_path / "r.md"), "--no-plots"])
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"metrics__csv": BINARY}, r"metrics\.csv: unreadable metrics CSV \(.+\); restore it from the run"),
        ({"metrics__csv": GZIP}, r"metrics\.csv: unreadable metrics CSV \(binary, not text\); restore it"),
        ({"perf_summary__json": BINARY}, r"perf_summary\.json: unreadable perf summary \(binary, not JSON"),
        ({"perf_summary__json": b"[1, 2]"}, r"perf_summary\.json: not a perf summary \(a JSON list\)"),
        ({"metrics__csv": b"a,b\n1,2\n"}, r"metrics\.csv: not a Lightning metrics\.csv .*; pass the run"),
    ],
)
def test_unreadable_run_file_is_one_line_with_a_fix_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, bytes], message: str
) -> None:
    code, err = report(run_dir(tmp_path, **files), tmp_path, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocr report: error: "), err
    assert re.search(message, lines[0]), lines[0]


def test_binary_config_yaml_is_a_note_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_dir(tmp_path, config__yaml=BINARY)
    main(
        [
            str(run),
            "--output",
            str(tmp_path / "r.md"),
            "--no-plots",
            "--export-json",
            str(tmp_path / "r.json"),
        ]
    )
    notes = json.loads((tmp_path / "r.json").read_text())["notes"]
    assert any("config.yaml unreadable" in n for n in notes), notes


@pytest.mark.parametrize(
    ("old", "value", "new"),
    [
        ("--threshold", "0.05", "--min-change 0.05"),
        ("--rule-threshold", "data_wait_share=0.3", "--rule-limit data_wait_share=0.3"),
        ("--thresholds", "limits.yaml", "--rule-limits-file limits.yaml"),
        ("--thresholds", None, "--rule-limits-file"),
    ],
)
def test_renamed_flags_fail_naming_the_new_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, value: str | None, new: str
) -> None:
    """The old spelling is refused (exit 2, one line naming the new flag), never ignored."""
    output = tmp_path / "r.md"
    with pytest.raises(SystemExit) as info:
        main([str(FIXTURE), old, *([value] if value else []), "--output", str(output), "--no-plots"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ocr report: error: {old} was renamed ") and f"use {new}\n" in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not output.exists()


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["{tmp}/nowhere"], "pass a run directory"),
        (["{tmp}"], "or --source NAME (see --list-sources)"),
        (["{fixture}", "--rule-limit", "nope=1"], "use one of:"),
    ],
)
def test_other_report_errors_name_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fix: str
) -> None:
    args = [a.format(tmp=tmp_path, fixture=FIXTURE) for a in argv]
    with pytest.raises(SystemExit) as info:
        main([*args, "--output", str(tmp_path / "r.md"), "--no-plots"])
    assert info.value.code == 2
    assert fix in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "where", "fix"),
    [
        (
            "--output",
            "folder",
            r"--output {p} is a directory; pass a file path, e\.g\. --output {p}/report\.md",
        ),
        ("--export-json", "folder", r"--export-json {p} is a directory; .*--export-json {p}/report\.json"),
        ("--export-csv", "proc", r"--export-csv {p}: cannot write it \(.+\); choose another path"),
    ],
)
def test_an_output_that_cannot_be_written_is_one_line_before_any_run_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, where: str, fix: str
) -> None:
    if where == "proc" and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc (a folder where no file can be made, also for root)")
    path = tmp_path if where == "folder" else Path("/proc/report_out")
    args = [str(tmp_path / "nowhere"), "--no-plots", option, str(path)]  # the run does not exist either
    if option != "--output":
        args += ["--output", str(tmp_path / "r.md")]
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(
        "ocr report: error: " + fix.format(p=re.escape(str(path))), lines[0]
    )
    assert not (tmp_path / "r.md").exists(), "the probe leaves no file behind"
