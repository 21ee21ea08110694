"""Package list for setuptools, found rather than written out: ``neurograph`` and
all its subpackages, and ``cli/`` (with any subpackages) as ``neurograph_cli``.

pyproject.toml's ``packages.find`` cannot rename a folder, and a hand-written
list in it missed every subpackage added later; the rest of the configuration,
the ``package-dir`` mapping included, is in pyproject.toml.
"""

from setuptools import find_packages, setup

_CLI = find_packages(include=["cli", "cli.*"])
setup(packages=find_packages(include=["neurograph", "neurograph.*"]) + ["neurograph_cli" + p[3:] for p in _CLI])
