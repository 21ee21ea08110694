"""neurograph: neural networks whose structure evolves while they learn.

The network is an explicit typed graph (:mod:`neurograph.graph`) compiled to
torch tensors for training (:mod:`neurograph.compile`). This module is the
public API (``docs/api.md``); its names are imported on first use, so
``import neurograph`` stays light (no torch until a trainer is asked for).

>>> import neurograph
>>> scenario = neurograph.Scenario(
...     name="api-demo",
...     structure=neurograph.OutgoingL1Rule(),
...     phases=[neurograph.Phase(task=neurograph.EasyTask(), cycles=200)],
... )
>>> summary = neurograph.train(scenario)
>>> summary["status"], summary["cycles"]
('finished', 200)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # scenarios
    "load_scenario": "neurograph.scenario",
    "scenario_to_yaml": "neurograph.scenario",
    "ScenarioError": "neurograph.schema",
    "Strict": "neurograph.schema",
    "Scenario": "neurograph.charrnn.scenario",
    "Phase": "neurograph.charrnn.scenario",
    "EasyTask": "neurograph.charrnn.scenario",
    "HardTask": "neurograph.charrnn.scenario",
    "TextTask": "neurograph.charrnn.scenario",
    "MultipliersRule": "neurograph.charrnn.scenario",
    "OutgoingL1Rule": "neurograph.charrnn.scenario",
    "FixedRule": "neurograph.charrnn.scenario",
    "URNScenario": "neurograph.urn.scenario",
    "LayeredScenario": "neurograph.layered.scenario",
    # training
    "train": "neurograph.training",
    "Trainer": "neurograph.charrnn.trainer",
    "URNTrainer": "neurograph.urn.train",
    "LayeredTrainer": "neurograph.layered.trainer",
    "Reporter": "neurograph.run.reporters",
    "ReporterSet": "neurograph.run.reporters",
    # the graph
    "Graph": "neurograph.graph",
    "Neuron": "neurograph.graph",
    "Area": "neurograph.graph",
    # run folders: writing and reading back
    "RunFolder": "neurograph.run.folder",
    "prepare_run_folder": "neurograph.run.folder",
    "run_summary": "neurograph.run.reader",
    "read_jsonl": "neurograph.run.reader",
    "read_events": "neurograph.run.reader",
    "graph_file": "neurograph.run.reader",
    "load_graph": "neurograph.run.reader",
    "snapshot_cycles": "neurograph.run.reader",
    # plugging in: kinds a scenario can name
    "Task": "neurograph.charrnn.tasks",
    "register_task": "neurograph.charrnn.tasks",
    "Selector": "neurograph.charrnn.selectors",
    "register_selector": "neurograph.charrnn.selectors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'neurograph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
