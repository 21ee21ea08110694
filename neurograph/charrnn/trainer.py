"""Many runs of the char-RNN trained in one tensor program.

:class:`BatchedTrainer` trains B (scenario, seed) members at once. Each
member is a :class:`~neurograph.charrnn.member.Member`: its own graph, RNG
streams (the single run's ``SeedSequence`` split), tasks, rule, penalty,
events and reporters. Their weights live in the padded batch tensors of
:class:`~neurograph.charrnn.padded.PaddedNets`, and per cycle:

1. each member reads its window: (B, T) input and target indices;
2. one batched BPTT (:mod:`neurograph.charrnn.bptt`; on the CPU one
   numba-compiled call, :mod:`neurograph.kernels.charrnn_bptt`), the penalties'
   gradient terms, one optimizer step and the post-update steps, all over the batch;
3. losses and scores go to numpy once;
4. each member, in turn, smooths its loss and asks its rule to decide with
   its hidden ids in ascending order (so its RNG draws are the single run's);
   a plan is applied as :class:`~neurograph.charrnn.train.Trainer` applies it: write
   back that member's slice, edit its graph, copy each new neuron's row and
   column into a free slot (memories there start at ``memory_init``, survivors
   keep theirs).

A member's structural events and losses are therefore those of the single run
of the same scenario and seed, up to float summation order (its slots are not
in the single run's order). Members may differ in tasks, phases, sizes and
rule parameters; they must share alphabet, window, dtype, device, optimizer
and penalty kind. Capacity grows when a member needs a slot; members that
finish leave the batch, and the slots are repacked when many stand empty.

Checkpoints are written per member in :meth:`Trainer.state`'s format, so any
member's run folder can be resumed by ``neurograph resume`` on its own, and a
batch built with ``checkpoints=`` continues members together (they must share
the optimizer's step count; :mod:`neurograph.charrnn.resume_seeds` resumes a seeds
directory this way).
:func:`run_seeds` runs one scenario over many seeds into run folders and
writes their aggregate (:mod:`neurograph.studies.aggregate`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neurograph.studies.aggregate import aggregate_rows
from neurograph.charrnn.bptt import Workspace, batched_bptt, mixed_scope, pick_kernel
from neurograph.charrnn.member import Member
from neurograph.charrnn.padded import PaddedNets
from neurograph.charrnn.batched_penalty import BatchedPenalty
from neurograph.compile import resolve_device
from neurograph.optim import build_optimizer
from neurograph.run.reporters import Reporter, ReporterSet
from neurograph.run.folder import RunFolder, prepare_run_folder, write_json_atomic
from neurograph.scenario import Scenario

__all__ = ["BatchedTrainer", "run_seeds", "REPACK_EVERY"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
REPACK_EVERY = 1000  # cycles between checks for empty slots to repack (a repack copies every tensor once)


class BatchedTrainer:
    """B runs trained together; :meth:`run` trains each to the end of its last phase.

    kernel: the BPTT kernel, ``"numba"``, ``"torch"`` or None for numba on the CPU
    (:func:`~neurograph.charrnn.bptt.pick_kernel`).
    checkpoints: per member, None (start at cycle 0) or the ``(state, tensors)`` of a
    :meth:`Trainer.state` checkpoint to continue from (as :meth:`Trainer.restore`).
    The batch shares one optimizer step count, so every member must continue from
    the same ``optimizer_steps`` (members that stopped together do), and none may
    have finished already; otherwise ValueError.
    """

    def __init__(
        self,
        scenarios: list[Scenario],
        *,
        reporters: list[Reporter] | None = None,
        kernel: str | None = None,
        checkpoints: list[tuple[dict, dict[str, torch.Tensor]] | None] | None = None,
    ) -> None:
        _check_shared(scenarios)
        if reporters is not None and len(reporters) != len(scenarios):
            raise ValueError(f"reporters: one per scenario expected, got {len(reporters)} for {len(scenarios)}")
        self.members = [Member(s, r) for s, r in zip(scenarios, reporters or [None] * len(scenarios))]
        checkpoints = _restore_members(self.members, checkpoints)
        alphabets = {m.alphabet for m in self.members}
        if len(alphabets) != 1:
            raise ValueError(f"members of a batch must share one alphabet, got {sorted(alphabets)}")
        first = scenarios[0]
        self.window, self.n_chars = first.window, len(self.members[0].alphabet)
        self.device, self.dtype = resolve_device(first.device), _DTYPES[first.dtype]
        self.optimizer = build_optimizer(first.optimizer)
        self.optimizer.steps = _shared_steps(self.members, checkpoints)
        self.kernel = pick_kernel(kernel, self.device)  # the BPTT kernel (batched_bptt.pick_kernel)
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
        self._scores: np.ndarray | None = None  # (B, Hc) after this cycle's structural steps, when asked
        self._session: tuple[float, list[float]] | None = None
        self._stop_requested = False
        self.summaries: dict[int, dict] = {}  # member index -> summary

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
        chars = torch.from_numpy(chars).to(self.device)
        hid = nets.hidden
        result = batched_bptt(
            nets.weight, nets.bias, None if self._unit_multipliers else nets.multiplier,
            chars[:, :-1], chars[:, 1:], nets.h[:, hid],
            n_chars=self.n_chars, scope_all=self._scope, workspace=self._workspace, kernel=self.kernel, threads=threads,
        )  # fmt: skip
        grads, params = result.as_dict(), nets.params
        self.penalty.add_gradient(params, grads)
        self.optimizer.step({k: params[k] for k in self.penalty.trainable}, grads, nets.masks)
        self.penalty.after_update(params, nets.alive)
        nets.h[:, hid] = result.h_last
        host = self._to_host(result.loss)  # the cycle's one transfer: losses, and scores if a rule needs them
        self._scores = None
        for m, loss in zip(rows, host[:, 0].tolist()):  # touches no tensor and no other member, so it may go first
            m.record_loss(loss)
        for b in self._growing:
            self._structural_step(b, rows[b], host[b, 1:])
        return host[:, 0]

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
        for nid in plan.delete:
            graph.delete_neuron(nid, reason=plan.reasons["delete"])
            nets.free(b, 2 * v + m.slot_of.pop(nid))
        fraction = m.start_fraction()
        for _ in range(plan.add):
            new = m.new_neuron(plan.reasons["add"])
            m.penalty.start_new(graph, new, cfg.threshold, fraction)
            slot = m.free_slot()
            if slot >= nets.capacity:
                self._grow(slot + 1)
            m.slot_of[new] = slot
            m.refresh_hidden()
            nets.load_neuron(b, graph, new, m.compiled_ids(), m.positions(v))
        m.adds += plan.add
        m.deletes += len(plan.delete)
        m.refresh_hidden()
        self.penalty.n_hidden[b] = m.n_hidden
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
        """Keep batch rows ``keep``; each member's neurons move to slots 0..H-1 by id."""
        members = [self.running[r] for r in keep]
        capacity = max((m.n_hidden for m in members), default=0)
        slots = torch.full((len(members), capacity), -1, dtype=torch.int64)
        for i, m in enumerate(members):
            slots[i, : m.n_hidden] = torch.from_numpy(m.hidden_slots)
            m.slot_of = {int(nid): k for k, nid in enumerate(m.hidden_ids.tolist())}
            m.refresh_hidden()
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
        self._scores = None

    # ---------------------------------------------------------- persistence
    def member_state(self, b: int) -> tuple[dict, dict[str, torch.Tensor]]:
        """Running member ``b``'s state in :meth:`Trainer.state`'s format (resumable by a Trainer)."""
        m, nets = self.running[b], self.nets
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
        state = m.bookkeeping_state(self._elapsed(m))
        state.update(graph=graph_state, compiled_ids=m.compiled_ids(), optimizer_steps=self.optimizer.steps)
        return state, tensors

    def write_back(self, b: int) -> None:
        """Copy running member ``b``'s trained values into its graph."""
        m = self.running[b]
        self.nets.write_back(b, m.graph, m.compiled_ids(), m.positions(self.n_chars))

    # --------------------------------------------------------------- running
    def run(self) -> list[dict]:
        """Train every member to its end (or until a stop request); returns the summaries in order."""
        t0 = time.perf_counter()
        self._session = (t0, [m.wall for m in self.members])
        for b, m in enumerate(self.running):
            m.reporters.start(m.info(str(self.device)))
            m.tick = (t0, m.cycle)
            if m.cycle == 0:
                self._checkpoint(b)  # a run folder is resumable from its first moment
        start_cycles = [m.cycle for m in self.members]
        try:
            while self.running and not self._stop_requested:
                self.step()
                self._report()
                done = [b for b, m in enumerate(self.running) if m.finished]
                if done:
                    self._finish(done, "finished", start_cycles)
                elif self.running[0].cycle % REPACK_EVERY == 0:
                    self._maybe_repack()
            if self.running:  # stop requested
                self._finish(list(range(len(self.running))), "interrupted", start_cycles)
        except KeyboardInterrupt:  # raised mid-cycle: each member's last checkpoint stays the valid one
            scores = self.scores()
            for b, m in enumerate(self.running):
                m.wall = self._elapsed(m)
                m.reporters.end(m.summary("interrupted", 0.0, scores[b]))
            raise
        return [self.summaries[i] for i in range(len(self.members)) if i in self.summaries]

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop every member after the current cycle (safe from a signal handler)."""
        self._stop_requested = True

    def _report(self) -> None:
        """Phase ends, metrics rows, snapshots and checkpoints due this cycle, as Trainer.run."""
        for b, m in enumerate(self.running):
            report, cycle = m.scenario.report, m.cycle
            if cycle in m.phase_ends:
                m.record_phase_end()
            if cycle % report.every == 0 or cycle == m.total_cycles:
                now = time.perf_counter()
                rate = (cycle - m.tick[1]) / max(now - m.tick[0], 1e-9)
                m.tick = (now, cycle)
                m.reporters.metrics(m.metrics_row(rate, self.scores()[b]))
            if report.graph_every and cycle % report.graph_every == 0 and cycle < m.total_cycles:
                self._snapshot(b, final=False)
            if report.checkpoint_every and cycle % report.checkpoint_every == 0:
                self._checkpoint(b)

    def _finish(self, rows: list[int], status: str, start_cycles: list[int]) -> None:
        """End members ``rows`` as Trainer.run ends (checkpoint, final snapshot, summary), then drop them."""
        for b in rows:
            m = self.running[b]
            self._checkpoint(b)
            m.wall = self._elapsed(m)
            self._snapshot(b, final=True)
            index = self.members.index(m)
            seconds = max(time.perf_counter() - self._session[0], 1e-9)
            summary = m.summary(status, (m.cycle - start_cycles[index]) / seconds, self.scores()[b])
            m.reporters.end(summary)
            self.summaries[index] = summary
        keep = [b for b in range(len(self.running)) if b not in rows]
        if keep:
            self._repack(keep)
        else:
            self.running = []

    def _checkpoint(self, b: int) -> None:
        m = self.running[b]
        state, tensors = self.member_state(b)
        m.reporters.checkpoint(m.cycle, state, tensors)

    def _snapshot(self, b: int, *, final: bool) -> None:
        m = self.running[b]
        self.write_back(b)
        m.reporters.snapshot(m.cycle, m.graph, m.reserve_ids(self.scores()[b]), final)

    def _elapsed(self, m: Member) -> float:
        if self._session is None:
            return m.wall
        start, before = self._session
        return before[self.members.index(m)] + time.perf_counter() - start


def run_seeds(
    scenario: Scenario,
    seeds: list[int],
    out_root: Path,
    *,
    force: bool = False,
    reporter_for: Callable[[Scenario], Reporter] | None = None,
    train: Callable[[BatchedTrainer], list[dict]] | None = None,
) -> list[dict]:
    """Run ``scenario`` for each seed, batched, into run folders ``out_root/seed-<n>/``.

    Each folder is an ordinary run folder (``prepare_run_folder`` + ``RunFolder``);
    ``reporter_for(seeded scenario)`` may add a reporter per member (a progress
    display); ``train(trainer)`` runs the batch (default ``trainer.run()``; the
    command line's turns Ctrl-C into :meth:`BatchedTrainer.request_stop`).
    Writes ``out_root/aggregate.json``: median and inter-quartile range over
    seeds of the loss and the hidden size at each metrics cycle
    (:func:`~neurograph.studies.aggregate.aggregate_rows`). Returns the
    members' summaries in the order of ``seeds``.
    """
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got {seeds}")
    out_root = Path(out_root)
    scenarios = [scenario.model_copy(update={"seed": int(s)}) for s in seeds]
    collectors = [_Rows() for _ in seeds]
    sets = []
    for s, rows in zip(scenarios, collectors):
        folder = prepare_run_folder(out_root / f"seed-{s.seed}", s, force=force)
        extra = [reporter_for(s)] if reporter_for is not None else []
        sets.append(ReporterSet([RunFolder(folder), rows, *extra]))
    trainer = BatchedTrainer(scenarios, reporters=sets)
    summaries = train(trainer) if train is not None else trainer.run()
    aggregate = aggregate_rows({s.seed: rows.rows for s, rows in zip(scenarios, collectors)})
    write_json_atomic(out_root / "aggregate.json", {"scenario": scenario.name, **aggregate})
    return summaries


class _Rows(Reporter):
    """Keeps a member's metrics rows for the aggregate."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def metrics(self, row):
        self.rows.append(row)


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
        if m.finished:
            raise ValueError(f"member {i} ({_name(m)}): already finished at cycle {m.cycle}; leave it out of the batch")
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
