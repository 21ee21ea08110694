"""The char-RNN trainer: B >= 1 runs trained in one tensor program.

A single run is a batch of one. :class:`Trainer` trains B (scenario, seed)
members at once. Each member is a :class:`~neurograph.charrnn.member.Member`:
its own graph, RNG streams (the seed's ``SeedSequence`` split), tasks, rule,
penalty, events and reporters. Their weights live in the padded batch tensors
of :class:`~neurograph.charrnn.padded.PaddedNets`, and per cycle:

1. each member reads its window: (B, T) input and target indices;
2. one batched BPTT (:mod:`neurograph.charrnn.bptt`; on the CPU one
   numba-compiled call, :mod:`neurograph.kernels.charrnn_bptt`), then the
   penalties' gradient terms, the optimizer step, the post-update steps and
   the threshold scores (:mod:`neurograph.charrnn.penalties`; on the CPU one
   compiled pass, :mod:`neurograph.kernels.charrnn_update`);
3. losses and scores go to numpy once;
4. each member, in turn, smooths its loss and asks its rule to decide with
   its hidden ids in ascending order; a plan writes back that member's
   deleted neurons, edits its graph and copies each new neuron's row and
   column into a free slot (memories there start at ``memory_init``,
   survivors keep theirs).

Members may differ in tasks, phases, sizes and rule parameters; they must
share alphabet, window, dtype, device, optimizer and penalty kind. Capacity
grows when a member needs a slot; members that finish leave the batch, and
the slots are repacked when many stand empty. The sequence of a run (reports,
checkpoints, the finish, stop requests) is :func:`neurograph.run.loop.run_loop`'s.

A member's hidden neurons always fill its slots 0..H-1 in id order (a
deletion closes the gap at once; new neurons take the next slot), and the
numba kernel computes each member at its own size: a member's numbers depend
on nothing else in the batch, so it computes exactly what its seed computes
alone, and a resumed run continues bit for bit.

Checkpoints are per member (:meth:`Trainer.state`): graph, RNG and task
states, counters and the member's tensors in compiled order (inputs, outputs,
hidden by id).
Any member's run folder can be resumed on its own, and a trainer built with
``checkpoints=`` continues members together (they must share the optimizer's
step count).
"""

from __future__ import annotations

import numpy as np
import torch

from neurograph.charrnn.bptt import Workspace, batched_bptt, mixed_scope, numba_window_in_place, pick_kernel
from neurograph.charrnn.member import Member
from neurograph.charrnn.padded import PaddedNets
from neurograph.charrnn.penalties import BatchedPenalty
from neurograph.device import DTYPES as _DTYPES, resolve_device
from neurograph.optim import build_optimizer
from neurograph.graph import Graph
from neurograph.kernels.charrnn_update import CompiledUpdate
from neurograph.run.loop import Batch, run_loop
from neurograph.run.reporters import Reporter
from neurograph.scenario import Scenario

__all__ = ["Trainer", "REPACK_EVERY", "CHARRNN_VOCABULARY"]

# How reporters speak of a char-RNN run (the ``start`` payload's words for a cycle, the loss and the size).
CHARRNN_VOCABULARY = {"unit": "cycle", "loss_unit": "nats/char", "size_label": "hidden"}

REPACK_EVERY = 1000  # cycles between checks for empty slots to repack (a repack copies every tensor once)


class Trainer(Batch):
    """B >= 1 char-RNN runs trained together; :meth:`run` trains each to the end of its last phase.

    scenarios: one scenario (a single run; :meth:`run` returns its summary) or a
    list (a batch; :meth:`run` returns the summaries in order). reporters: one
    per scenario (a single reporter for a single scenario), or None.
    kernel: the BPTT kernel, ``"numba"``, ``"torch"`` or None for numba on the CPU
    (:func:`~neurograph.charrnn.bptt.pick_kernel`).
    checkpoints (checkpoint for a single scenario): per member, None (start at cycle 0) or the ``(state, tensors)`` of a
    :meth:`state` checkpoint to continue from. The batch shares one optimizer step
    count, so every member must continue from the same ``optimizer_steps``
    (members that stopped together do); otherwise ValueError. A member restored
    at its last cycle (a run stopped while finishing) only finishes.
    graph (a single scenario only): a network built by hand to train instead of
    the one the scenario would build (structure.initial_hidden, or a fixed
    rule's hidden, and its init std are then unused); the trainer edits it in
    place. It must fit the task's alphabet
    (:func:`~neurograph.charrnn.network.check_char_rnn`), else ValueError.

    >>> from neurograph.charrnn.scenario import EasyTask, OutgoingL1Rule, Phase, Scenario
    >>> scenario = Scenario(name="demo", structure=OutgoingL1Rule(), phases=[Phase(task=EasyTask(), cycles=200)])
    >>> summary = Trainer(scenario).run()
    >>> summary["status"], summary["cycles"], summary["hidden"] >= 1
    ('finished', 200, True)

    A graph built by hand: one input and one output per character of ``ab()``,
    one hidden neuron that reads every input, feeds back on itself and drives
    every output.

    >>> g = Graph()
    >>> inputs = [g.add_neuron("input", tags=[f"char:{c}"]) for c in "ab()"]
    >>> outputs = [g.add_neuron("output", tags=[f"char:{c}"]) for c in "ab()"]
    >>> h = g.add_neuron("hidden")
    >>> for x in inputs: g.connect(x, h, 0.1)
    >>> for y in outputs: g.connect(h, y, 0.1)
    >>> g.connect(h, h, 0.5)
    >>> trainer = Trainer(scenario, graph=g)
    >>> trainer.run()["cycles"], trainer.graph is g, g.age(h)
    (200, True, 200)
    """

    def __init__(
        self,
        scenarios: Scenario | list[Scenario],
        *,
        reporters: Reporter | list[Reporter | None] | None = None,
        kernel: str | None = None,
        checkpoints: list[tuple[dict, dict[str, torch.Tensor]] | None] | None = None,
        checkpoint: tuple[dict, dict[str, torch.Tensor]] | None = None,
        graph: Graph | None = None,
    ) -> None:
        self.single = isinstance(scenarios, Scenario)
        if self.single:
            scenarios, reporters, checkpoints = [scenarios], [reporters], [checkpoint]
        elif checkpoint is not None or graph is not None:
            raise ValueError("checkpoint= and graph= are for a single scenario; a batch takes checkpoints=")
        elif not isinstance(scenarios, (list, tuple)) or not all(isinstance(s, Scenario) for s in scenarios):
            raise TypeError(
                f"Trainer takes a char-RNN Scenario or a list of them, got {type(scenarios).__name__} "
                "(a URN scenario trains with neurograph.urn.train.URNTrainer; neurograph.train picks the trainer)"
            )
        if graph is not None and checkpoint is not None:
            raise ValueError("give graph= or checkpoint=, not both: a checkpoint holds its own graph")
        _check_shared(scenarios)
        if reporters is not None and len(reporters) != len(scenarios):
            raise ValueError(f"reporters: one per scenario expected, got {len(reporters)} for {len(scenarios)}")
        graphs = [graph] + [None] * (len(scenarios) - 1)
        self.members = [Member(s, r, g) for s, r, g in zip(scenarios, reporters or [None] * len(scenarios), graphs)]
        checkpoints = _restore_members(self.members, checkpoints)
        alphabets = {m.alphabet for m in self.members}
        if len(alphabets) != 1:
            raise ValueError(f"members of a batch must share one alphabet, got {sorted(alphabets)}")
        first = scenarios[0]
        self.window, self.n_chars = first.window, len(self.members[0].alphabet)
        self.device, self.dtype = resolve_device(first.device), _DTYPES[first.dtype]
        self.optimizer = build_optimizer(first.optimizer)
        self.optimizer.steps = _shared_steps(self.members, checkpoints)
        self.kernel = pick_kernel(kernel, self.device)  # the BPTT kernel (bptt.pick_kernel)
        self.running = list(self.members)  # batch row b holds running[b]
        capacity = max(m.n_hidden for m in self.members)
        self.nets = PaddedNets(len(self.members), self.n_chars, capacity, dtype=self.dtype, device=self.device,
                               optimizer=self.optimizer)  # fmt: skip
        for b, (m, checkpoint) in enumerate(zip(self.members, checkpoints)):
            self.nets.load(b, m.graph, m.compiled_ids(), m.positions(self.n_chars))
            if checkpoint is not None:
                self._load_trained(b, checkpoint[1])
        self.penalty = BatchedPenalty(
            [m.penalty for m in self.members], window=self.window, n_chars=self.n_chars,
            dtype=self.dtype, device=self.device,
        )  # fmt: skip
        self._after_membership()
        self._chars = np.zeros((len(self.members), self.window + 1), dtype=np.int64)  # (B, T + 1) reused
        self._workspace = Workspace()
        self._host: np.ndarray | None = None  # (B, 1 + Hc) losses and scores of the compiled update
        self._update: tuple | None = None  # (key, CompiledUpdate) while the tensors keep their memory
        self._scores: np.ndarray | None = None  # (B, Hc) after this cycle's structural steps, when asked
        self.stop_requested = False

    def _load_trained(self, b: int, tensors: dict[str, torch.Tensor]) -> None:
        m = self.members[b]
        try:
            self.nets.load_trained(b, m.positions(self.n_chars), tensors)
        except (KeyError, IndexError, RuntimeError) as e:
            raise ValueError(f"member {b} ({_name(m)}): checkpoint tensors do not fit its graph ({e})") from None

    # -------------------------------------------------------------- queries
    @property
    def capacity(self) -> int:
        """Hidden slots per member in the padded tensors."""
        return self.nets.capacity

    def scores(self) -> np.ndarray:
        """(B, Hc) every running member's slot scores now, float64 (padding: meaningless)."""
        if self._scores is None:
            s = self.penalty.scores(self.nets.weight, self.nets.multiplier)
            self._scores = s.detach().cpu().double().numpy()
        return self._scores

    # ------------------------------------------------------------- training
    def step(self) -> np.ndarray:
        """Train every running member one cycle; returns their window losses (B,), nats.

        With the numba kernel the cycle's torch operations run on one thread and
        the kernel on ``torch.get_num_threads()``: after a parallel operation
        torch's OpenMP workers keep spinning (GNU OpenMP's default) on the cores
        the kernel's helper threads need; on two cores that made the cycle 14%
        slower. The updates are elementwise: the weights they give do not depend
        on the thread count.
        """
        threads = torch.get_num_threads()
        if self.kernel != "numba" or threads == 1:
            return self._step(None)
        torch.set_num_threads(1)
        try:
            return self._step(threads)
        finally:
            torch.set_num_threads(threads)

    def _step(self, threads: int | None) -> np.ndarray:
        rows, nets = self.running, self.nets
        chars = self._chars[: len(rows)]
        for b, m in enumerate(rows):
            m.window(chars[b])
        multiplier = None if self._unit_multipliers else nets.multiplier
        if self.kernel == "numba":
            loss = numba_window_in_place(
                nets.weight, nets.bias, multiplier, nets.h, chars, self.n_chars, self._scope, self._workspace,
                threads, self._n_hidden,
            )  # fmt: skip
            host = self._update_compiled(loss, multiplier is not None)
        else:
            chars = torch.from_numpy(chars).to(self.device)
            hid = nets.hidden
            result = batched_bptt(
                nets.weight, nets.bias, multiplier, chars[:, :-1], chars[:, 1:], nets.h[:, hid],
                n_chars=self.n_chars, scope_all=self._scope, workspace=self._workspace, kernel=self.kernel,
            )  # fmt: skip
            nets.h[:, hid] = result.h_last
            grads, params = result.as_dict(), nets.params
            self.penalty.add_gradient(params, grads)
            self.optimizer.step({k: params[k] for k in self.penalty.trainable}, grads, nets.masks)
            self.penalty.after_update(params, nets.alive)
            host = self._to_host(result.loss)  # the cycle's one transfer: losses, and scores if a rule needs them
        self._scores = None
        for m, loss in zip(rows, host[:, 0].tolist()):  # touches no tensor and no other member, so it may go first
            m.record_loss(loss)
        for b in self._growing:
            self._structural_step(b, rows[b], host[b, 1:])
        if rows[0].cycle % REPACK_EVERY == 0:
            self._maybe_repack()
        return host[:, 0].copy()

    def _update_compiled(self, loss: np.ndarray, multipliers: bool) -> np.ndarray:
        """Penalty, optimizer, post-update step and scores in one compiled pass
        (:mod:`neurograph.kernels.charrnn_update`) on the workspace's gradients;
        returns (B, 1 + Hc) losses and scores."""
        self.optimizer.steps += 1
        key = (self.nets.version, len(self.running), multipliers)  # a new version whenever a tensor is replaced
        if self._update is None or self._update[0] != key:
            self._update = (key, self._bind_update(multipliers))
        self._update[1](self.optimizer.steps)
        host = self._host
        host[:, 0] = loss
        return host

    def _bind_update(self, multipliers: bool) -> CompiledUpdate:
        nets, trainable, ws = self.nets, self.penalty.trainable, self._workspace
        view = ws.view
        memories = self.optimizer.memories({k: nets.params[k] for k in trainable})
        self._host = np.empty((len(self.running), 1 + nets.capacity))  # (B, 1 + Hc) losses and scores
        grads = {"weight": ws.g_weight, "bias": ws.g_bias, "multiplier": ws.g_mult if multipliers else None}
        return CompiledUpdate(
            {k: view(t) for k, t in nets.params.items()},
            {k: view(t) for k, t in grads.items() if k in trainable and t is not None},
            {"weight": view(nets.mask), "bias": view(nets.alive)},
            {k: tuple(None if t is None else view(t) for t in pair) for k, pair in memories.items()},
            self.optimizer.settings(), self.penalty.kernel_args(), self._host[:, 1:],
        )  # fmt: skip

    def _to_host(self, loss: torch.Tensor) -> np.ndarray:
        columns = [loss.unsqueeze(1)]
        if self._any_growing:
            columns.append(self.penalty.scores(self.nets.weight, self.nets.multiplier))
        return torch.cat(columns, 1).detach().cpu().double().numpy()

    def _structural_step(self, b: int, m: Member, slot_scores: np.ndarray) -> None:
        plan = m.decide(slot_scores)
        if not plan:
            return
        graph, cfg, v, nets = m.graph, m.scenario.structure, self.n_chars, self.nets
        n_events = len(graph.events)
        nets.write_back(b, graph, m.compiled_ids(), m.positions(v), plan.delete)  # the graveyard keeps their wiring
        fossils = [graph.delete_neuron(nid, reason=plan.reasons["delete"]) for nid in plan.delete]
        if fossils:
            m.reporters.fossils(fossils)  # the run folder logs their wiring: the lifetime view replays it
        if plan.delete:  # the survivors close the gaps, in place: slots 0..H-1 by id again
            gone = set(plan.delete)
            nets.compact(b, [k for k, nid in enumerate(m.hidden_ids.tolist()) if nid not in gone])
            m.refresh_hidden()
        fraction = m.start_fraction()
        for _ in range(plan.add):
            new = m.new_neuron(plan.reasons["add"])  # the largest id: it takes the slot after the last
            m.penalty.start_new(graph, new, cfg.threshold, fraction)
            if m.n_hidden >= nets.capacity:
                self._grow(m.n_hidden + 1)
            m.refresh_hidden()
            nets.load_neuron(b, graph, new, m.compiled_ids(), m.positions(v))
        m.adds += plan.add
        m.deletes += len(plan.delete)
        m.refresh_hidden()
        self.penalty.n_hidden[b] = m.n_hidden
        self._n_hidden[b] = m.n_hidden
        m.reporters.events([e for e in graph.events[n_events:] if e.kind in ("add", "delete")])

    # ------------------------------------------------------------ capacity
    def _grow(self, needed: int) -> None:
        """Room for ``needed`` slots per member, with headroom so growth is rare."""
        old = self.nets.capacity
        new = max(needed, old + max(1, old // 8))
        slots = torch.full((len(self.running), new), -1, dtype=torch.int64)
        slots[:, :old] = torch.arange(old)
        self.nets.reindex(torch.arange(len(self.running)), slots)

    def _repack(self, keep: list[int]) -> None:
        """Keep batch rows ``keep`` and shrink the capacity to the largest of them (slots stay 0..H-1 by id)."""
        members = [self.running[r] for r in keep]
        capacity = max((m.n_hidden for m in members), default=0)
        slots = torch.full((len(members), capacity), -1, dtype=torch.int64)
        for i, m in enumerate(members):
            slots[i, : m.n_hidden] = torch.arange(m.n_hidden)
        rows = torch.tensor(keep, dtype=torch.int64)
        self.nets.reindex(rows, slots)
        self.penalty.select(rows)
        self.running = members
        self._after_membership()

    def _maybe_repack(self) -> None:
        largest = max(m.n_hidden for m in self.running)
        if self.nets.capacity - largest >= max(2, self.nets.capacity // 4):
            self._repack(list(range(len(self.running))))

    def _after_membership(self) -> None:
        # multipliers fixed at 1 (not trained, all 1): BPTT skips its products with them
        live = self.nets.multiplier[self.nets.alive > 0]
        self._unit_multipliers = "multiplier" not in self.penalty.trainable and bool((live == 1).all())
        self._scope = mixed_scope([m.scope for m in self.running], self.device)
        self._growing = [b for b, m in enumerate(self.running) if m.growing]  # rows whose rule may change them
        self._any_growing = bool(self._growing)
        self.penalty.n_hidden.copy_(torch.tensor([float(m.n_hidden) for m in self.running]))
        self._n_hidden = torch.tensor([m.n_hidden for m in self.running], dtype=torch.int64)  # slots 0..H-1 in use
        self._scores = None

    # ---------------------------------------------------------- persistence
    def state(self, m: Member) -> tuple[dict, dict[str, torch.Tensor]]:
        """Running member ``m``'s checkpoint: (JSON-able dict, tensors in compiled order)."""
        b, nets = self.running.index(m), self.nets
        pos = torch.tensor(m.positions(self.n_chars), dtype=torch.int64, device=self.device)
        square = lambda t: t[b].index_select(0, pos).index_select(1, pos).clone()  # noqa: E731
        graph_state, graph_arrays = m.graph.to_state()
        tensors = {
            "graph.weights": torch.from_numpy(graph_arrays["weights"]),
            "graph.present": torch.from_numpy(graph_arrays["present"]),
            "compiled.weight": square(nets.weight),
            "compiled.mask": square(nets.mask),
            "compiled.bias": nets.bias[b, pos].clone(),
            "compiled.multiplier": nets.multiplier[b, pos].clone(),
            "h": nets.h[b, pos].clone(),
        }
        for name, memories in self.optimizer.state.items():
            for key, mem in memories.items():
                tensors[f"optimizer.{name}.{key}"] = square(mem) if key == "weight" else mem[b, pos].clone()
        state = m.bookkeeping_state(m.wall)
        state.update(graph=graph_state, compiled_ids=m.compiled_ids(), optimizer_steps=self.optimizer.steps)
        return state, tensors

    def write_back(self, m: Member | None = None) -> None:
        """Copy running member ``m``'s (default: the single run's) trained values into its graph."""
        m = self._single() if m is None else m
        self.nets.write_back(self.running.index(m), m.graph, m.compiled_ids(), m.positions(self.n_chars))

    # --------------------------------------------------------------- running
    def run(self) -> dict | list[dict]:
        """Train every member to its end (or until a stop request); returns the
        summary (one scenario) or the summaries in order (a list)."""
        summaries = run_loop(self)
        return summaries[0] if self.single and summaries else summaries

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop every member after the current cycle (safe from a signal handler)."""
        self.stop_requested = True

    def advance(self) -> bool:
        self.step()
        return True

    def info(self, m: Member) -> dict:
        return {**m.info(str(self.device)), **CHARRNN_VOCABULARY}

    def record_phase_end(self, m: Member) -> None:
        m.record_phase_end()

    def metrics_row(self, m: Member, cycles_per_s: float) -> dict:
        return m.metrics_row(cycles_per_s, self.scores()[self.running.index(m)])

    def snapshot(self, m: Member, final: bool) -> None:
        self.write_back(m)
        m.reporters.snapshot(m.cycle, m.graph, m.reserve_ids(self.scores()[self.running.index(m)]), final)

    def summary(self, m: Member, status: str, cycles_per_s: float) -> dict:
        return m.summary(status, cycles_per_s, self.scores()[self.running.index(m)])

    def leave(self, members: list[Member]) -> None:
        keep = [b for b, m in enumerate(self.running) if m not in members]
        if keep:
            self._repack(keep)
        else:
            self.running = []


def _restore_members(members: list[Member], checkpoints: list | None) -> list:
    """Restore each member that has a checkpoint; returns the checkpoints, one per member."""
    checkpoints = checkpoints if checkpoints is not None else [None] * len(members)
    if len(checkpoints) != len(members):
        raise ValueError(f"checkpoints: one per scenario (or None) expected, got {len(checkpoints)} for {len(members)}")
    for i, (m, checkpoint) in enumerate(zip(members, checkpoints)):
        if checkpoint is None:
            continue
        try:
            m.restore(*checkpoint)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ValueError(
                f"member {i} ({_name(m)}): checkpoint does not fit its scenario ({type(e).__name__}: {e})"
            ) from None
    return checkpoints


def _shared_steps(members: list[Member], checkpoints: list) -> int:
    """The optimizer step count every member continues from; ValueError if they differ."""
    steps = {_name(m): 0 if c is None else int(c[0]["optimizer_steps"]) for m, c in zip(members, checkpoints)}
    if len(set(steps.values())) > 1:
        found = ", ".join(f"{name}: {n}" for name, n in steps.items())
        raise ValueError(
            f"members continue from different optimizer steps ({found}); a batch shares one step count, "
            "so only members that stopped together can resume as one batch"
        )
    return next(iter(steps.values()))


def _name(m: Member) -> str:
    return f"{m.scenario.name} seed {m.scenario.seed}"


def _check_shared(scenarios: list[Scenario]) -> None:
    """ValueError unless the scenarios can share one batch."""
    if not scenarios:
        raise ValueError("a batch needs at least one scenario")
    first = scenarios[0]
    for i, s in enumerate(scenarios[1:], start=1):
        for field in ("window", "dtype"):
            if getattr(s, field) != getattr(first, field):
                raise ValueError(
                    f"scenario {i} ({s.name}): {field} {getattr(s, field)!r} differs from scenario 0's "
                    f"{getattr(first, field)!r}; a batch shares window, dtype, device, optimizer and penalty kind"
                )
        if resolve_device(s.device) != resolve_device(first.device):
            raise ValueError(f"scenario {i} ({s.name}): device {s.device!r} differs from scenario 0's {first.device!r}")
        if s.optimizer != first.optimizer:
            raise ValueError(
                f"scenario {i} ({s.name}): optimizer {s.optimizer.model_dump()} differs from scenario 0's "
                f"{first.optimizer.model_dump()}; a batch shares one optimizer kind and its hyper-parameters"
            )
        if _penalty_kind(s) != _penalty_kind(first):
            raise ValueError(
                f"scenario {i} ({s.name}): penalty {_penalty_kind(s)!r} differs from scenario 0's "
                f"{_penalty_kind(first)!r}; members of a batch share one penalty kind"
            )


def _penalty_kind(s: Scenario) -> str:
    return s.structure.penalty if s.structure.kind == "fixed" else s.structure.kind
