"""URN training loop: the one place that sequences model, data, analysis and deletion.

Per epoch: shuffle the phase's training set, for each minibatch run the I
iterations, back-propagate the eq. 9 loss (by hand:
:mod:`neurograph.urn.backprop`) and take an Adam step
(:class:`neurograph.optim.Adam`, masked by the connection mask). After the
epoch: measure test accuracy, optionally delete hidden neurons that have been
silent for ``deletion.patience`` epochs (write back, delete from the graph,
sync the compiled tensors, remap Adam's memories), analyse the structure and
report. Phases are tasks trained one after the other on the same network
(Golkar's Never-Ending Structure Accumulation); at each phase end every earlier
task's test accuracy is measured too.

A run is a pure function of (scenario, seed): ``np.random.SeedSequence(seed)``
is split into streams for weight initialisation (a ``torch.Generator``),
minibatch order (another) and each phase's data.

The sequence of a run (metrics rows, snapshots, checkpoints at epoch 0, every
``report.checkpoint_every`` epochs and at the end, the finish, stop requests)
is :func:`neurograph.run.loop.run_loop`'s; this trainer is its engine with one
member, itself. Each snapshot's analysis reaches the reporters through their
``connectome`` hook. A stop request is honoured between
minibatches: the unfinished epoch's progress (its minibatch order, position,
peak activities and running sums) is part of the state, so a resumed run
finishes that epoch exactly as an uninterrupted one would. The datasets are not
saved: they are rebuilt from the seed.

Metrics rows (one per ``report.every`` epochs): ``cycle`` (epoch), ``phase``,
``task``, ``loss`` (training cross-entropy, nats, mean over the epoch),
``loss_total`` (with the penalties), ``optimum`` and ``gap`` (None),
``hidden`` (living hidden neurons), ``reserve`` (0), ``adds`` (0), ``deletes``
(cumulative), ``cycles_per_s`` (epochs per second), ``epoch_s`` (seconds of
training in the epoch), ``neurons`` (living, S after deletions), ``accuracy``
(training, during the epoch), ``test_accuracy``, and the structure from
:meth:`neurograph.urn.analysis.Analysis.summary`: ``active``, ``active_total``,
``layers``, ``active_per_iteration``, ``multi_iteration``, ``depth``,
``path_depth``, ``synapses``, ``edges`` and ``edges_z``, ``fractions``,
``forward_fraction`` and ``forward_fraction_z``, ``adjacent_fraction``,
``mean_synapse_length``, ``random_pair_length``, ``length_ratio``. The summary
adds the ablations (:meth:`URNTrainer.ablation`). While the final outputs are
written and measured, reporters hear what is going on through ``status``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neurograph.compile import compile_graph, sync, write_back
from neurograph.device import DTYPES as _DTYPES, resolve_device
from neurograph.run.network_state import network_state, restore_network
from neurograph.optim import build_optimizer
from neurograph.run.loop import phase_of, run_loop
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.urn.analysis import Analysis, ablations, analyse
from neurograph.urn.backprop import Workspace, loss_and_gradients
from neurograph.urn.data import Dataset, bars, load_cifar10, spheres
from neurograph.urn.deletion import InactivityTracker
from neurograph.urn.geometry import lattice_for, place_neurons, vector_grid
from neurograph.urn.model import SPARSE_BELOW, Dynamics, build_urn_graph, correct, forward, weight_coefficients
from neurograph.urn.scenario import URNScenario

__all__ = ["URNTrainer", "make_dataset", "DELETE_REASON", "URN_VOCABULARY"]

# How reporters speak of a URN run (the ``start`` payload's words for a cycle, the loss and the size).
URN_VOCABULARY = {"unit": "epoch", "loss_unit": "nats/sample", "size_label": "active"}

DELETE_REASON = "inactive"
# Counters saved in checkpoints besides graph, tensors and generator states.
_COUNTERS = ("cycle", "deletes", "wall", "last", "phase_results")


def make_dataset(task, grid: tuple[int, int] | None, rng: np.random.Generator) -> Dataset:
    """Dataset of a phase's ``task`` section; images are made at (or resized to) ``grid`` = (rows, cols)."""
    sizes = {"n_train": task.train, "n_test": task.test}
    if task.kind == "spheres":
        return spheres(dim=task.dim, radii=task.radii, thickness=task.thickness, rng=rng, **sizes)
    if task.kind == "bars":
        return bars(grid=grid, classes=task.classes, noise=task.noise, pairs=task.pairs, rng=rng, **sizes)
    return load_cifar10(Path(task.path), grid=grid, resize=task.resize, **sizes)


@dataclass
class _Split:
    """One phase's data as tensors on the device."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _torch_generator(seq: np.random.SeedSequence) -> torch.Generator:
    return torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1)))


class URNTrainer:
    """One run of a URN scenario; :meth:`run` trains every phase and returns the summary.

    checkpoint: the ``(state, tensors)`` of a :meth:`state` checkpoint to continue from.
    """

    def __init__(
        self,
        scenario: URNScenario,
        *,
        reporters: Reporter | None = None,
        checkpoint: tuple[dict, dict[str, torch.Tensor]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.reporters = reporters or ReporterSet()
        s_init, s_batch, s_data = np.random.SeedSequence(scenario.seed).spawn(3)
        net = scenario.network
        self.dynamics = Dynamics(net.iterations, net.update, net.activation, net.output_activation)
        self.device = resolve_device(scenario.device)
        image = scenario.phases[0].task.kind != "spheres"
        self.grid = (net.geometry.y, net.geometry.x) if image else None
        rngs = [np.random.default_rng(s) for s in s_data.spawn(len(scenario.phases))]
        self.datasets = [make_dataset(p.task, self.grid, r) for p, r in zip(scenario.phases, rngs)]
        self.splits = [self._to_device(d) for d in self.datasets]
        self.graph = self._build_graph(_torch_generator(s_init))
        self.compiled = compile_graph(self.graph, device=self.device, dtype=_DTYPES[scenario.dtype])
        self.optimizer = build_optimizer(scenario.optimizer)
        self.g_batch = _torch_generator(s_batch)
        self.coefficients = self._coefficients()
        self.tracker = InactivityTracker(scenario.deletion.patience)
        self.phase_ends = np.cumsum([p.epochs for p in scenario.phases]).tolist()
        self.cycle = 0
        self.deletes = 0
        self.wall = 0.0
        self.last: dict = {}  # last epoch's training figures
        self.analysis: Analysis | None = None  # of the network at epoch ``analysed_at``
        self.analysed_at = -1
        self.phase_results: list[dict] = []
        self._epoch: dict | None = None  # progress through an unfinished epoch (see train_epoch)
        self._workspace = Workspace()  # the (S, S) gradient buffer, kept between steps
        self.running = [self]  # the run loop's members: this run
        self.stop_requested = False
        self._last_epoch: dict | None = None
        if checkpoint is not None:
            self.restore(*checkpoint)

    # -------------------------------------------------------------- building
    @staticmethod
    def check(scenario: URNScenario) -> None:
        """What building a trainer would refuse, without allocating the S x S network:
        each phase's data (read or generated) and the neurons' places on the lattice."""
        net = scenario.network
        image = scenario.phases[0].task.kind != "spheres"
        grid = (net.geometry.y, net.geometry.x) if image else None
        s_data = np.random.SeedSequence(scenario.seed).spawn(3)[2]
        rngs = [np.random.default_rng(s) for s in s_data.spawn(len(scenario.phases))]
        datasets = [make_dataset(p.task, grid, r) for p, r in zip(scenario.phases, rngs)]
        _positions(net, datasets, grid)

    def _build_graph(self, generator: torch.Generator):
        net = self.scenario.network
        positions = _positions(net, self.datasets, self.grid)
        graph = build_urn_graph(positions, generator=generator, gain=net.init_gain)
        graph.meta.update(scenario=self.scenario.name, seed=str(self.scenario.seed), model="urn")
        return graph

    def _to_device(self, d: Dataset) -> _Split:
        dtype = _DTYPES[self.scenario.dtype]
        t = lambda a, dt=dtype: torch.as_tensor(a, dtype=dt).to(self.device)  # noqa: E731
        return _Split(t(d.x_train), t(d.y_train, torch.int64), t(d.x_test), t(d.y_test, torch.int64))

    def _coefficients(self):
        loss, beta = self.scenario.loss, self.scenario.network.geometry.beta
        return weight_coefficients(
            self.compiled, self.graph, c_w=loss.c_w, c_syn=loss.c_syn, gamma=loss.gamma, beta=beta,
            pairs=loss.synapse_pairs,
        )  # fmt: skip

    # -------------------------------------------------------------- queries
    @property
    def total_cycles(self) -> int:
        return self.phase_ends[-1]

    def phase_index(self, cycle: int | None = None) -> int:
        """Phase that trains epoch ``cycle + 1`` (default: the next epoch)."""
        cycle = self.cycle if cycle is None else cycle
        return phase_of(self.phase_ends, cycle)

    def last_phase(self) -> int:
        """Phase of the last finished epoch (phase 0 before any)."""
        return self.phase_index(self.cycle - 1 if self.cycle else 0)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """(n, d_out) output nodes at iteration I for samples ``x`` (n, d_in)."""
        c = self.compiled

        def run(xb: torch.Tensor) -> torch.Tensor:
            return forward(c.weight, c.bias, xb, outputs=c.outputs, dynamics=self.dynamics, sparse=SPARSE_BELOW)[-1]

        return torch.cat([run(x[i : i + batch_size])[:, c.outputs] for i in range(0, len(x), batch_size)])

    def test_accuracy(self, phase: int | None = None) -> float:
        """Accuracy on a phase's held-out set (default: the last finished epoch's phase)."""
        split = self.splits[self.last_phase() if phase is None else phase]
        return float(correct(self.logits(split.x_test), split.y_test).float().mean())

    def analyse(self, phase: int | None = None) -> Analysis:
        """Structure of the current network on the first ``analysis.samples`` training samples of ``phase``."""
        a = self.scenario.analysis
        split = self.splits[self.last_phase() if phase is None else phase]
        return analyse(
            self.compiled,
            self.graph,
            split.x[: a.samples],
            self.dynamics,
            activity_threshold=a.activity_threshold,
            weight_threshold=a.weight_threshold,
            beta=self.scenario.network.geometry.beta,
        )

    def current_analysis(self) -> Analysis:
        """:meth:`analyse` of the network as it is now, computed at most once per epoch."""
        if self.analysis is None or self.analysed_at != self.cycle:
            self.analysis, self.analysed_at = self.analyse(), self.cycle
        return self.analysis

    # ------------------------------------------------------------- training
    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
        """One Adam step on a minibatch ``x`` (B, d_in), ``y`` (B,); returns the loss terms and states.

        The data and activity gradients are hand-written (:mod:`neurograph.urn.backprop`);
        the weight terms' subgradient goes to the optimizer as ``l1``. The
        reported terms are those of the weights before the step, as autograd's would be
        (the optimizer returns the weight term, read in its own pass).
        """
        c = self.compiled
        r = loss_and_gradients(
            c.weight, c.bias, x, y, outputs=c.outputs, dynamics=self.dynamics,
            c_n=self.activity_coefficient(len(x)), workspace=self._workspace,
        )  # fmt: skip
        params, grads = {"weight": c.weight, "bias": c.bias}, {"weight": r.grad_weight, "bias": r.grad_bias}
        penalty = self.optimizer.step(params, grads, {"weight": c.mask}, l1={"weight": self.coefficients})
        weight_term = torch.tensor(penalty["weight"], dtype=r.ce.dtype)
        terms = {"ce": r.ce, "weight": weight_term, "activity": r.activity}
        terms["total"] = r.ce + weight_term + r.activity
        return terms, r.states

    def activity_coefficient(self, batch: int) -> float:
        """c_N as it multiplies the batch mean of sum_l |N^(l)|_1 (``loss.activity_reduction``)."""
        loss = self.scenario.loss
        return loss.c_n * batch if loss.activity_reduction == "sum" else loss.c_n

    def train_epoch(self) -> dict | None:
        """One pass over the current phase's training set; returns the epoch's figures.

        ``peak`` (S,): each neuron's largest |N^(l)|, l = 1..I, over the epoch (for deletion).
        None when a stop request ends the epoch part-way: its progress stays in
        ``_epoch`` (and in checkpoints) and the next call continues it.
        """
        split = self.splits[self.phase_index()]
        c, n, batch = self.compiled, len(split.x), self.scenario.training.batch_size
        if self._epoch is None:
            order = torch.randperm(n, generator=self.g_batch).to(self.device)
            peak = torch.zeros(c.n, dtype=c.weight.dtype, device=self.device)
            self._epoch = {"order": order, "peak": peak, "start": 0, "ce": 0.0, "total": 0.0, "right": 0, "seconds": 0.0}
        e = self._epoch
        t0 = time.perf_counter()
        while e["start"] < n and not self.stop_requested:
            idx = e["order"][e["start"] : e["start"] + batch]
            terms, states = self.step(split.x[idx], split.y[idx])
            with torch.no_grad():
                e["peak"] = torch.maximum(e["peak"], torch.stack(states[1:]).abs().amax(dim=(0, 1)))
                e["ce"] += terms["ce"].item() * len(idx)
                e["total"] += terms["total"].item() * len(idx)
                e["right"] += correct(states[-1][:, c.outputs], split.y[idx]).sum().item()
            e["start"] += len(idx)
        e["seconds"] += time.perf_counter() - t0
        if e["start"] < n:
            return None
        self._epoch = None
        self.cycle += 1
        self.graph.cycle = self.cycle
        return {
            "ce": e["ce"] / n,
            "total": e["total"] / n,
            "accuracy": e["right"] / n,
            "peak": e["peak"].cpu().numpy(),
            "epoch_s": e["seconds"],
        }

    def delete_silent(self, peak: np.ndarray) -> list[int]:
        """Record the epoch's activity; delete hidden neurons silent for ``patience`` epochs."""
        c = self.compiled
        threshold = self.scenario.analysis.activity_threshold
        self.tracker.update(c.hidden_ids, peak[c.hidden], threshold)
        due = self.tracker.due()
        if not due:
            return []
        graph = self.graph
        n_events = len(graph.events)
        write_back(c, graph, ids=due)  # the dying neurons' last weights; survivors stay in the compiled copy
        reason = f"{DELETE_REASON} {self.tracker.patience} epochs"
        for nid in due:
            graph.delete_neuron(nid, reason=reason)
        remap = sync(c, graph)
        self.optimizer.remap(remap)
        self.coefficients = self._coefficients()
        self.tracker.forget(due)
        self.deletes += len(due)
        self.analysed_at = -1  # the analysis names neurons that are gone
        self.reporters.events([e for e in graph.events[n_events:] if e.kind == "delete"])
        return due

    # -------------------------------------------------------------- running
    def info(self, member=None) -> dict:
        s = self.scenario
        rule = f"urn {s.network.update}" + (" + deletion" if s.deletion.enabled else "")
        starts = [0] + self.phase_ends[:-1]
        return {
            "scenario": s.name,
            "seed": s.seed,
            "total_cycles": self.total_cycles,
            "start_cycle": self.cycle,
            "rule": rule,
            "device": str(self.device),
            "model": "urn",  # the views show a URN's structure rather than a char-RNN's sizes
            **URN_VOCABULARY,  # what a "cycle" counts in rows and summaries, the loss unit, the size
            "size": self.compiled.n,
            "phases": [
                {"task": _task_name(p.task), "cycles": end - start, "end": end, "optimum": None}
                for p, start, end in zip(s.phases, starts, self.phase_ends)
            ],
        }

    def metrics_row(self, member, cycles_per_s: float) -> dict:
        """The last epoch's row, with test accuracy and structure measured now."""
        epoch = self._last_epoch
        self.current_analysis()
        test_accuracy = self.test_accuracy()
        phase = self.phase_index(self.cycle - 1)
        return {
            "cycle": self.cycle,
            "phase": phase,
            "task": _task_name(self.scenario.phases[phase].task),
            "loss": epoch["ce"],
            "loss_total": epoch["total"],
            "optimum": None,
            "gap": None,
            "hidden": self.compiled.n_hidden,
            "reserve": 0,
            "adds": 0,
            "deletes": self.deletes,
            "cycles_per_s": cycles_per_s,
            "epoch_s": epoch["epoch_s"],
            "neurons": self.compiled.n,
            "accuracy": epoch["accuracy"],
            "test_accuracy": test_accuracy,
            **self.analysis.summary(),
        }

    def run(self) -> dict:
        """Train every phase (or until :meth:`request_stop`); returns the summary."""
        return run_loop(self)[0]

    def request_stop(self) -> None:
        """Stop at the next minibatch boundary (safe from a signal handler)."""
        self.stop_requested = True

    def advance(self) -> bool:
        """One epoch and its deletions; False when a stop request cut the epoch short."""
        epoch = self.train_epoch()
        if epoch is None:
            return False
        self.last = {k: v for k, v in epoch.items() if k != "peak"}
        self._last_epoch = epoch
        if self.scenario.deletion.enabled:
            self.delete_silent(epoch["peak"])
        return True

    def leave(self, members: list) -> None:
        self.running = []

    # ----------------------------------------------------------- persistence
    def state(self, member=None) -> tuple[dict, dict[str, torch.Tensor]]:
        """Everything needed to continue exactly: (JSON-able dict, tensors)."""
        network, tensors = network_state(self.graph, self.compiled, self.optimizer)
        tensors["g_batch"] = self.g_batch.get_state()  # (5056,) uint8, the minibatch-order generator
        state = {k: getattr(self, k) for k in _COUNTERS}
        state.update(
            scenario=self.scenario.name,
            seed=self.scenario.seed,
            wall=self.wall,
            **network,
            streak=[[i, k] for i, k in self.tracker.streak.items()],  # consecutive inactive epochs by id
            epoch=None,
        )
        if self._epoch is not None:  # stopped part-way through an epoch
            e = self._epoch
            state["epoch"] = {k: v for k, v in e.items() if k not in ("order", "peak")}
            tensors["epoch.order"], tensors["epoch.peak"] = e["order"], e["peak"]
        return state, tensors

    def restore(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state` (the scenario must be the same)."""
        dtype = _DTYPES[self.scenario.dtype]
        self.graph, c = restore_network(state, tensors, self.optimizer, device=self.device, dtype=dtype)
        self.compiled = c
        on = lambda t: t.to(device=self.device, dtype=dtype)  # noqa: E731
        self.g_batch.set_state(tensors["g_batch"])
        self.tracker.streak = {int(i): int(k) for i, k in state["streak"]}
        for key in _COUNTERS:
            setattr(self, key, state[key])
        self._epoch = None
        if state["epoch"] is not None:
            order = tensors["epoch.order"].to(self.device)
            self._epoch = dict(state["epoch"], order=order, peak=on(tensors["epoch.peak"]))
        self.coefficients = self._coefficients()
        self.analysis, self.analysed_at = None, -1

    def snapshot(self, member=None, final: bool = False) -> None:
        """Write back, then hand reporters the graph and its analysis."""
        if final:
            self.reporters.status("writing the graph, connectome and figures")
        write_back(self.compiled, self.graph)
        self.reporters.snapshot(self.cycle, self.graph, [], final)
        self.reporters.connectome(self.cycle, self.graph, self.current_analysis(), final)

    def ablation(self, phase: int | None = None) -> dict:
        """Golkar's check and the emergent-MLP test on the phase's test set
        (:func:`neurograph.urn.analysis.ablations`).

        ``neurons``: zero every weight to or from an inactive neuron (the
        paper's check); ``synapses``: also zero the active neurons' synapses
        at or below ``analysis.weight_threshold`` (the active network as counted);
        ``forward``: keep only its forward synapses; ``adjacent``: only those
        between adjacent layers.
        """
        phase = self.last_phase() if phase is None else phase
        analysis = self.analyse(phase)
        split = self.splits[phase]
        threshold = self.scenario.analysis.weight_threshold
        return ablations(self.compiled, analysis, split.x_test, split.y_test, self.dynamics, weight_threshold=threshold)

    def record_phase_end(self, member=None) -> None:
        phase = self.phase_index(self.cycle - 1)
        self.current_analysis()
        tests = [self.test_accuracy(p) for p in range(phase + 1)]
        self.phase_results.append(
            {
                "phase": phase,
                "task": _task_name(self.scenario.phases[phase].task),
                "end_cycle": self.cycle,
                "hidden": self.compiled.n_hidden,
                "loss": self.last.get("ce", float("nan")),
                "optimum": None,
                "accuracy": self.last.get("accuracy"),
                "test_accuracy": tests[-1],
                "earlier_test_accuracy": tests[:-1],
                **self.analysis.summary(),
            }
        )

    def summary(self, member, status: str, cycles_per_s: float) -> dict:
        self.reporters.status("measuring the structure and the ablations")
        analysis = self.current_analysis()
        phase = self.last_phase()
        return {
            "scenario": self.scenario.name,
            "seed": self.scenario.seed,
            "model": "urn",
            "status": status,
            "cycles": self.cycle,
            "total_cycles": self.total_cycles,
            "hidden": self.compiled.n_hidden,
            "reserve": 0,
            "loss": self.last.get("ce", float("nan")),
            "optimum": None,
            "adds": 0,
            "deletes": self.deletes,
            "wall_s": self.wall,
            "cycles_per_s": cycles_per_s,
            "size": len(self.graph.ids()) + self.deletes,
            "neurons": self.compiled.n,
            "accuracy": self.last.get("accuracy"),
            "test_accuracy": self.test_accuracy(phase),
            **analysis.summary(),
            "ablation": self.ablation(phase),
            "phases": self.phase_results,
        }


def _positions(net, datasets: list[Dataset], grid: tuple[int, int] | None) -> dict[str, np.ndarray]:
    """Places of the input, hidden and output neurons on the eq. 8 lattice (ValueError if they do not fit)."""
    d_in, d_out = datasets[0].d_in, max(d.n_classes for d in datasets)
    g = net.geometry
    size = net.size if net.size is not None else (g.x * g.y * g.z)
    n_hidden = size - d_in - d_out
    if n_hidden < 0:
        raise ValueError(f"network.size {size} is smaller than {d_in} inputs + {d_out} outputs")
    lattice = lattice_for(size, grid or vector_grid(d_in), x=g.x, y=g.y, z=g.z)
    return place_neurons(lattice, grid or vector_grid(d_in), d_in, d_out, n_hidden)


def _task_name(task) -> str:
    return "bar-pairs" if task.kind == "bars" and task.pairs else task.kind
