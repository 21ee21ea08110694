"""Tests for the packaging (pyproject.toml, setup.py): a wheel built from the sources
holds every module of ``neurograph/`` and of ``cli/`` (as ``neurograph_cli``), the
other files in those folders, and the ``neurograph`` command, and runs outside the
checkout. Built offline, without build isolation, from a copy of the sources (the
checkout's ``build/`` is neither read nor written): a few seconds."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"neurograph": "neurograph", "cli": "neurograph_cli"}  # source folder -> import name
BUILD_FILES = ("pyproject.toml", "setup.py", "README.md")
NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")  # bytecode and numba's caches
SCENARIO = ROOT / "scenarios" / "switch.yaml"


def source_files() -> dict[str, Path]:
    """Wheel path -> source file, for every file under the package folders."""
    files = {}
    for folder, name in PACKAGES.items():
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files[Path(name, rel).as_posix()] = path
    return files


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, src / name)
    for folder in PACKAGES:
        shutil.copytree(ROOT / folder, src / folder, ignore=NOT_SHIPPED)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run([*command, "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("neurograph-*.whl")
    return path


@pytest.fixture(scope="module")
def shipped(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_every_module_is_in_the_wheel(shipped):
    modules = {p for p in source_files() if p.endswith(".py")}
    assert {"neurograph/urn/train.py", "neurograph_cli/main.py"} <= modules
    assert sorted(modules - shipped) == []


def test_every_data_file_of_the_packages_is_in_the_wheel(shipped):
    """Files other than modules in the package folders are read at run time; a new
    kind needs a pattern in pyproject.toml's ``[tool.setuptools.package-data]``."""
    data = {p for p in source_files() if not p.endswith(".py")}
    assert sorted(data - shipped) == []


def test_the_wheel_ships_the_command_and_nothing_from_outside_the_packages(wheel, shipped):
    with zipfile.ZipFile(wheel) as zf:
        info = next(n for n in shipped if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(zf.read(info).decode())
    assert entry_points["console_scripts"]["neurograph"] == "neurograph_cli.main:main"
    tops = {n.split("/")[0] for n in shipped if ".dist-info/" not in n}
    assert tops == set(PACKAGES.values())


def test_the_unpacked_wheel_imports_and_validates_a_scenario_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    script = (
        "import sys, neurograph, neurograph_cli.main as m\n"
        "print(neurograph.__file__, m.__file__, file=sys.stderr)\n"
        f"sys.exit(m.main(['validate', {str(SCENARIO)!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the checkout's editable install
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    module_files = run.stderr.split()[:2]
    assert all(Path(f).is_relative_to(site) for f in module_files), module_files
    assert run.stdout.startswith("name: switch")
