"""Build hook: ship the repository's ``configs/`` inside the wheel as ``ocr/configs``.

The configs stay at ``configs/`` in the repository (where users look for them); a regular build
copies them into the package, so ``pip install .`` and wheels find them through
``importlib.resources``. An editable install copies nothing: ``ocr.config_dir`` then reads the
checkout's ``configs/`` directly, so an edit to a YAML file takes effect without reinstalling.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS = Path(__file__).resolve().parent / "configs"


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ocr" / "configs"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(CONFIGS, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithConfigs})
