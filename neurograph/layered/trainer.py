"""``LayeredTrainer``: the run loop's engine for layered and multi-area scenarios.

One member (:class:`~neurograph.layered.member.LayeredRun`) per (scenario,
seed); a single run is a batch of one, and ``run --seeds`` trains several
members cycle by cycle in one process. The sequence of a run (metrics rows,
snapshots, checkpoints, the finish, stop requests) is
:func:`neurograph.run.loop.run_loop`'s.

Metrics rows: ``cycle``, ``phase``, ``task``, ``loss`` (training
cross-entropy, smoothed, nats per sample or per character), ``loss_step``
(the last step's), ``test_loss``, ``accuracy`` and ``test_accuracy``
(measured now on the whole training and test sets; None for character
tasks), ``optimum``/``gap`` (character tasks with a known optimum),
``hidden`` (neurons over all hidden areas), ``reserve`` (hidden neurons at or
below T_D), ``depth`` (hidden areas), ``widths`` and ``areas`` (per area, in
order), ``layer_norms`` (each area's outgoing L1 norm), ``adds``,
``deletes``, ``layer_adds``, ``layer_deletes`` (cumulative) and
``cycles_per_s``.
"""

from __future__ import annotations

import torch

from neurograph.layered.member import LayeredRun
from neurograph.layered.scenario import LayeredScenario
from neurograph.run.loop import Batch, run_loop
from neurograph.run.reporters import Reporter

__all__ = ["LayeredTrainer", "LAYERED_VOCABULARY"]

LAYERED_VOCABULARY = {"unit": "cycle", "size_label": "hidden"}


class LayeredTrainer(Batch):
    """Train one layered scenario, or a list of them (one member each).

    graph: a network to train instead of the scenario's starting one (a single
    scenario), e.g. one read back from GraphML: its areas must be the scenario's
    and its projections wired in full (:func:`~neurograph.layered.network.check_graph`).
    """

    def __init__(
        self,
        scenarios: LayeredScenario | list[LayeredScenario],
        *,
        reporters: Reporter | list[Reporter | None] | None = None,
        checkpoint: tuple[dict, dict[str, torch.Tensor]] | None = None,
        checkpoints: list | None = None,
        kernel: str | None = None,
        graph=None,
    ) -> None:
        self.single = isinstance(scenarios, LayeredScenario)
        if self.single:
            scenarios, reporters, checkpoints = [scenarios], [reporters], [checkpoint]
        elif checkpoint is not None or graph is not None:
            raise ValueError("checkpoint= and graph= are for a single scenario; a batch takes checkpoints=")
        if graph is not None and checkpoint is not None:
            raise ValueError("give graph= or checkpoint=, not both: a checkpoint holds its own graph")
        if not all(isinstance(s, LayeredScenario) for s in scenarios):
            raise TypeError("LayeredTrainer takes layered scenarios (model: layered)")
        reporters = reporters or [None] * len(scenarios)
        checkpoints = checkpoints or [None] * len(scenarios)
        graphs = [graph] + [None] * (len(scenarios) - 1)
        self.members = [LayeredRun(s, r, c, g) for s, r, c, g in zip(scenarios, reporters, checkpoints, graphs)]
        self.running = list(self.members)
        self.stop_requested = False
        self.finishing = False

    @staticmethod
    def check(scenario: LayeredScenario) -> None:
        """What building the trainer would refuse (it is small: build it)."""
        LayeredRun(scenario)

    # --------------------------------------------------------------- engine
    def run(self) -> dict | list[dict]:
        summaries = run_loop(self)
        return summaries[0] if self.single and summaries else summaries

    def request_stop(self) -> None:
        self.stop_requested = True

    def advance(self) -> bool:
        for m in self.running:
            m.step()
        return True

    def info(self, m: LayeredRun) -> dict:
        s = m.scenario
        starts = [0] + m.phase_ends[:-1]
        rule = "layered width" + (" + depth" if s.depth.enabled else "")
        return {
            "scenario": s.name,
            "seed": s.seed,
            "total_cycles": m.total_cycles,
            "start_cycle": m.cycle,
            "rule": rule,
            "device": str(m.device),
            "model": "layered",
            **LAYERED_VOCABULARY,
            "loss_unit": m.loss_unit,
            "phases": [
                {"task": p.task.kind, "cycles": end - start, "end": end, "optimum": _optimum(m, k)}
                for k, (p, start, end) in enumerate(zip(s.phases, starts, m.phase_ends))
            ],
        }

    def record_phase_end(self, m: LayeredRun) -> None:
        phase = m.phase_index(m.cycle - 1)
        m.phase_results.append({
            "phase": phase, "task": m.scenario.phases[phase].task.kind, "end_cycle": m.cycle, "loss": m.loss_ema,
            "optimum": _optimum(m, phase), "accuracy": m.accuracy("train"), "test_accuracy": m.accuracy("test"),
            **m.size_fields(),
        })  # fmt: skip

    def metrics_row(self, m: LayeredRun, cycles_per_s: float) -> dict:
        phase = m.phase_index(m.cycle - 1 if m.cycle else 0)
        optimum = _optimum(m, phase)
        return {
            "cycle": m.cycle,
            "phase": phase,
            "task": m.scenario.phases[phase].task.kind,
            "loss": m.loss_ema,
            "loss_unit": m.loss_unit,
            "loss_step": m.last_loss,
            "test_loss": m.test_loss(),
            "optimum": optimum,
            "gap": None if optimum is None or m.loss_ema is None else m.loss_ema - optimum,
            "accuracy": m.accuracy("train"),
            "test_accuracy": m.accuracy("test"),
            **m.size_fields(),
            "adds": m.adds,
            "deletes": m.deletes,
            "layer_adds": m.layer_adds,
            "layer_deletes": m.layer_deletes,
            "cycles_per_s": cycles_per_s,
        }

    def state(self, m: LayeredRun) -> tuple[dict, dict[str, torch.Tensor]]:
        return m.state()

    def snapshot(self, m: LayeredRun, final: bool) -> None:
        m.write_back()
        m.reporters.snapshot(m.cycle, m.graph, m.reserve_ids(), final)

    def summary(self, m: LayeredRun, status: str, cycles_per_s: float) -> dict:
        phase = m.phase_index(m.cycle - 1 if m.cycle else 0)
        return {
            "scenario": m.scenario.name,
            "seed": m.scenario.seed,
            "model": "layered",
            "status": status,
            "cycles": m.cycle,
            "total_cycles": m.total_cycles,
            **m.size_fields(),
            "loss": m.loss_ema,
            "loss_unit": m.loss_unit,
            "optimum": _optimum(m, phase),
            "accuracy": m.accuracy("train"),
            "test_accuracy": m.accuracy("test"),
            "test_loss": m.test_loss(),
            "adds": m.adds,
            "deletes": m.deletes,
            "layer_adds": m.layer_adds,
            "layer_deletes": m.layer_deletes,
            "wall_s": m.wall,
            "cycles_per_s": cycles_per_s,
            "phases": m.phase_results,
        }

    def leave(self, members: list) -> None:
        self.running = [m for m in self.running if m not in members]


def _optimum(m: LayeredRun, phase: int) -> float | None:
    """The best achievable loss per character of a character task (None where unknown or static)."""
    if not m.sequence:
        return None
    return m.tasks[phase].optimum()
