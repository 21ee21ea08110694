"""One run of a layered scenario: its graph, blocks, optimizer, data, rules and counters.

Per cycle (:meth:`LayeredRun.step`):

1. a training step: a minibatch of the phase's samples (static tasks), or a
   window of characters through time with the areas' state carried from the
   previous window (character tasks); cross-entropy, gradients by autograd
   over the weight blocks, the optimizer's step, then the outgoing-L1 step
   ``W -= lambda sign(W)`` on every projection out of a hidden area;
2. the structural rules on every neuron's outgoing L1 norm: the width rule in
   each growing area, and the depth rule on the layers' norms (the sum of
   their neurons'), each a :class:`~neurograph.charrnn.growth.Reserve`
   deciding from the structure stream; plans are applied on the graph
   (:mod:`neurograph.layered.network`), and :meth:`Blocks.resync` carries the
   trained values and the optimizer's memories across the edit.

Everything the run reports is measured: the loss is the training
cross-entropy (nats per sample or per character) smoothed by an EMA, the
accuracies are computed on the phase's training and test sets at each
metrics row, widths and depth are read off the graph.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurograph.charrnn.growth import Reserve
from neurograph.charrnn.selectors import build_selector
from neurograph.charrnn.tasks import TASKS, shared_alphabet
from neurograph.device import DTYPES, resolve_device
from neurograph.graph import Graph
from neurograph.layered.blocks import Blocks, forward
from neurograph.layered.network import (
    add_layer, add_neuron, build_graph, check_graph, delete_layer, layer_names, projections_of,
)  # fmt: skip
from neurograph.layered.tasks import make_dataset
from neurograph.optim import build_optimizer
from neurograph.run.loop import phase_of
from neurograph.run.reporters import Reporter, ReporterSet

__all__ = ["LayeredRun", "COUNTERS"]

COUNTERS = ("cycle", "adds", "deletes", "layer_adds", "layer_deletes", "loss_ema", "last_loss", "wall",
            "phase_results")  # fmt: skip
ADD_REASON, DELETE_REASON = "reserve", "below threshold"


class LayeredRun:
    """One (scenario, seed): the run loop's member (see :mod:`neurograph.run.loop`)."""

    def __init__(self, scenario, reporters: Reporter | None = None, checkpoint: tuple[dict, dict] | None = None,
                 graph: Graph | None = None):  # fmt: skip
        self.scenario = s = scenario
        self.reporters = reporters or ReporterSet()
        s_structure, s_init, s_data, s_task = np.random.SeedSequence(s.seed).spawn(4)
        self.rng_structure = np.random.default_rng(s_structure)
        self.rng_init = np.random.default_rng(s_init)
        self.rng_data = np.random.default_rng(s_data)
        self.device, self.dtype = resolve_device(s.device), DTYPES[s.dtype]
        self.phase_ends = np.cumsum([p.cycles for p in s.phases]).tolist()
        self.sequence = s.sequence
        self._build_data(np.random.default_rng(s_task))
        self.width_rule = Reserve(
            k=s.width.k, threshold=s.width.threshold, p_add=s.width.p_add, p_del=s.width.p_del,
            p_spontaneous=s.width.p_spontaneous, max_hidden=s.width.max_size, selector=build_selector(s.width.selector),
        )  # fmt: skip
        d = s.depth
        self.depth_rule = Reserve(k=d.k, threshold=d.threshold, p_add=d.p_add, p_del=d.p_del, p_spontaneous=0.0,
                                  max_hidden=d.max_layers, selector=build_selector(d.selector))  # fmt: skip
        self.growing = self._growing_areas()
        self.optimizer = build_optimizer(s.optimizer)
        self.cycle = self.adds = self.deletes = self.layer_adds = self.layer_deletes = 0
        self.loss_ema: float | None = None
        self.last_loss = float("nan")
        self.wall = 0.0
        self.phase_results: list[dict] = []
        self.carried: dict[str, torch.Tensor] | None = None  # areas' state at the end of the last window
        self._coefficients: dict | None = None  # the L1 strengths per parameter entry, until the next edit
        if graph is not None:  # a network built or imported by hand, trained as it is
            check_graph(graph, s, self.n_input, self.n_output)
            self.graph = graph
            self.blocks = Blocks(graph, projections_of(s.network, graph), dtype=self.dtype, device=self.device)
        elif checkpoint is None:
            self.graph = build_graph(s, self.n_input, self.n_output, self.rng_init, tags_in=self.tags_in,
                                     tags_out=self.tags_out)  # fmt: skip
            self.blocks = Blocks(self.graph, projections_of(s.network, self.graph), dtype=self.dtype,
                                 device=self.device)  # fmt: skip
        else:
            self.restore(*checkpoint)

    # ----------------------------------------------------------------- data
    def _build_data(self, rng: np.random.Generator) -> None:
        s = self.scenario
        if self.sequence:
            rngs = [np.random.default_rng(q) for q in np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(s.phases))]
            self.tasks = [TASKS.build(p.task, r) for p, r in zip(s.phases, rngs)]
            self.alphabet = shared_alphabet([t.alphabet for t in self.tasks])
            self.n_input = self.n_output = len(self.alphabet)
            self.tags_in = self.tags_out = [f"char:{c}" for c in self.alphabet]
            self.window_chars = np.zeros(s.training.window + 1, dtype=np.int64)
            self.next_char: int | None = None
            return
        self.tasks = []
        t = s.phases[0].task
        params = {"test_fraction": t.test_fraction} if t.kind == "digits" else {"bits": t.bits}
        data = make_dataset(t.kind, rng, **params)
        on = lambda a, dt: torch.as_tensor(a, dtype=dt).to(self.device)  # noqa: E731
        self.x, self.y = on(data.x_train, self.dtype), on(data.y_train, torch.int64)
        self.x_test, self.y_test = on(data.x_test, self.dtype), on(data.y_test, torch.int64)
        self.n_input, self.n_output = data.d_in, data.n_classes
        self.tags_in = self.tags_out = ()

    def _growing_areas(self) -> set[str] | None:
        """Hidden areas the width rule resizes (None: all of them, as in a stack)."""
        net = self.scenario.network
        if self.scenario.width.kind == "fixed":
            return set()
        return None if net.areas is None else {a.name for a in net.areas if a.grow}

    # -------------------------------------------------------------- queries
    @property
    def total_cycles(self) -> int:
        return self.phase_ends[-1]

    def phase_index(self, cycle: int | None = None) -> int:
        cycle = self.cycle if cycle is None else cycle
        return phase_of(self.phase_ends, cycle)

    @property
    def loss_unit(self) -> str:
        return "nats/char" if self.sequence else "nats/sample"

    def widths(self) -> dict[str, int]:
        """Neurons per hidden area, in order."""
        return {a: len(self.blocks.ids[a]) for a in layer_names(self.graph)}

    def norms(self) -> dict[str, np.ndarray]:
        """Per hidden area, (n,) each neuron's outgoing norm now (the width rule's score)."""
        return self.blocks.outgoing_norms(self.scenario.width.norm)

    def reserve_ids(self, norms: dict[str, np.ndarray] | None = None) -> list[int]:
        """Hidden neurons at or below the width threshold (given ``norms``, or now)."""
        out = []
        for area, values in (self.norms() if norms is None else norms).items():
            out += [i for i, b in zip(self.blocks.ids[area], self.width_rule.below(values)) if b]
        return out

    # ------------------------------------------------------------- training
    def step(self) -> None:
        """One cycle: a training step, then the structural rules."""
        loss = self._train_window() if self.sequence else self._train_batch()
        self.last_loss = loss
        a = self.scenario.training.loss_smoothing
        self.loss_ema = loss if self.loss_ema is None else a * self.loss_ema + (1 - a) * loss
        self.cycle += 1
        self.graph.cycle = self.cycle
        self._structural_step()

    def _train_batch(self) -> float:
        n, batch = len(self.x), self.scenario.training.batch_size
        idx = self.rng_data.choice(n, size=batch, replace=batch > n)
        idx_t = torch.from_numpy(idx).to(self.device)
        logits = forward(self.blocks, self.x[idx_t], self.scenario.network.activation)["output"]
        loss = F.cross_entropy(logits, self.y[idx_t])
        self._update(loss)
        return float(loss.detach())

    def _train_window(self) -> float:
        window = self.scenario.training.window
        task = self.tasks[self.phase_index()]
        chars = self.window_chars
        if self.next_char is None:
            chars[:] = task.take(window + 1)
        else:
            chars[0] = self.next_char
            chars[1:] = task.take(window)
        self.next_char = int(chars[-1])
        onehot = F.one_hot(torch.from_numpy(chars).to(self.device), self.n_input).to(self.dtype)
        activation, hidden = self.scenario.network.activation, self.blocks.order[1:-1]
        previous, steps = self.carried, []
        for t in range(window):  # the hidden areas step by step; the output reads only the current step
            h = forward(self.blocks, onehot[t : t + 1], activation, previous, areas=hidden)
            previous = {a: h[a] for a in hidden}
            steps.append(h)
        window_h = {a: torch.cat([h[a] for h in steps]) for a in ("input", *hidden)}  # (T, n) per area
        logits = _output(self.blocks, window_h, activation)
        loss = F.cross_entropy(logits, torch.from_numpy(chars[1:]).to(self.device), reduction="sum")
        self._update(loss)
        self.carried = {k: v.detach() for k, v in previous.items()}
        return float(loss.detach()) / window

    def _update(self, loss: torch.Tensor) -> None:
        """Gradients, the optimizer's step and the outgoing-L1 term (in the gradient, or after the step)."""
        params = self.blocks.params
        for p in params.values():
            p.grad = None
        loss.backward()
        pen = self.scenario.penalty
        coefficients = self._l1_coefficients()
        with torch.no_grad():
            grads = {k: p.grad if p.grad is not None else torch.zeros_like(p) for k, p in params.items()}
            in_gradient = pen.placement == "gradient" and pen.l1 > 0
            self.optimizer.step(params, grads, {}, l1=coefficients if in_gradient else None)
            if pen.placement == "after_update" and pen.l1 > 0:
                for k, coef in coefficients.items():
                    if isinstance(coef, torch.Tensor):
                        params[k].sub_(coef * torch.sign(params[k]))

    def _l1_coefficients(self) -> dict[str, torch.Tensor | float]:
        """lambda on every weight out of a hidden neuron, 0 on the input's weights and the biases."""
        if self._coefficients is None:
            lam = self.scenario.penalty.l1
            self._coefficients = {k: 0.0 for k in self.blocks.params}
            self._coefficients.update({k: lam * m for k, m in self.blocks.l1_mask().items()})
        return self._coefficients

    # ------------------------------------------------------------ structure
    def _structural_step(self) -> None:
        """Decide from the current norms, then apply: deleted layers, width edits, a new layer."""
        s, graph, blocks = self.scenario, self.graph, self.blocks
        norms = self.norms()
        rng = self.rng_structure
        layer_plan = None
        if s.depth.enabled:
            layers = list(norms)
            ages = np.array([graph.area_age(a) for a in layers], dtype=np.int64)
            scores = np.array([norms[a].sum() for a in layers])
            layer_plan = self.depth_rule.decide(np.arange(len(layers)), scores, ages, rng)
            dying_layers = [layers[k] for k in layer_plan.delete]
        else:
            dying_layers = []
        width_plans = {}
        for area, area_norms in norms.items():
            if self.growing is not None and area not in self.growing:
                continue
            ids = np.array(blocks.ids[area], dtype=np.int64)
            ages = self.cycle - blocks.born[area]
            plan = self.width_rule.decide(ids, area_norms, ages, rng)
            if plan and area not in dying_layers:
                width_plans[area] = plan
        if not dying_layers and not width_plans and not (layer_plan and layer_plan.add):
            return
        n_events = len(graph.events)
        touched = set(dying_layers) | set(width_plans)
        blocks.write_back(graph, sorted(touched))  # the dying keep their trained wiring in the graveyard
        fossils = []
        for name in dying_layers:
            gone = delete_layer(graph, name, s, reason=f"layer {DELETE_REASON}")
            fossils += gone
            self.layer_deletes += 1
            self.deletes += len(gone)
        projections = projections_of(s.network, graph)
        for area, plan in width_plans.items():
            for nid in plan.delete:
                fossils.append(graph.delete_neuron(nid, reason=DELETE_REASON))
                self.deletes += 1
            for _ in range(plan.add):
                add_neuron(graph, area, projections, s, self.rng_init, norm=s.width.new_norm * s.width.threshold,
                           reason=ADD_REASON)  # fmt: skip
                self.adds += 1
        if layer_plan is not None and layer_plan.add:
            add_layer(graph, s, self.rng_init, reason=f"layer {ADD_REASON}")
            self.layer_adds += 1
            self.adds += s.depth.new_size  # neurons in all: hidden = start + adds - deletes
        self._resync()
        if fossils:
            self.reporters.fossils(fossils)
        kinds = ("add", "delete", "add_area", "delete_area")
        self.reporters.events([e for e in graph.events[n_events:] if e.kind in kinds])

    def _resync(self) -> None:
        """Blocks, optimizer memories and carried state after a graph edit."""
        old_ids = dict(self.blocks.ids)
        moves = self.blocks.resync(self.graph, projections_of(self.scenario.network, self.graph))
        self._coefficients = None
        opt = self.optimizer
        for name, memories in opt.state.items():
            fill = opt.memory_init if name != "m" else 0.0
            opt.state[name] = {k: moves.apply(k, m, fill) for k, m in memories.items() if k in moves.rows}
        if self.carried is not None:
            carried = {}
            for area, h in self.carried.items():
                if area in self.blocks.ids:
                    pos = {i: k for k, i in enumerate(old_ids[area])}
                    out = torch.zeros((h.shape[0], len(self.blocks.ids[area])), dtype=h.dtype, device=h.device)
                    for k, i in enumerate(self.blocks.ids[area]):
                        if i in pos:
                            out[:, k] = h[:, pos[i]]
                    carried[area] = out
            self.carried = carried

    # ----------------------------------------------------------- measuring
    @torch.no_grad()
    def accuracy(self, split: str = "test") -> float | None:
        """Fraction of the split classified right now (static tasks; None for character tasks)."""
        if self.sequence:
            return None
        x, y = (self.x_test, self.y_test) if split == "test" else (self.x, self.y)
        right = 0
        for i in range(0, len(x), 4096):
            logits = forward(self.blocks, x[i : i + 4096], self.scenario.network.activation)["output"]
            right += int((logits.argmax(dim=1) == y[i : i + 4096]).sum())
        return right / len(x)

    @torch.no_grad()
    def test_loss(self) -> float | None:
        """Mean cross-entropy on the test split, nats/sample (static tasks)."""
        if self.sequence:
            return None
        logits = forward(self.blocks, self.x_test, self.scenario.network.activation)["output"]
        return float(F.cross_entropy(logits, self.y_test))

    def size_fields(self) -> dict:
        widths, norms = self.widths(), self.norms()
        return {
            "hidden": sum(widths.values()),
            "reserve": len(self.reserve_ids(norms)),
            "depth": len(widths),
            "widths": list(widths.values()),
            "areas": list(widths),
            "layer_norms": [round(float(n.sum()), 6) for n in norms.values()],  # each area's outgoing L1
        }

    # ----------------------------------------------------------- persistence
    def state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        graph_state, arrays = self.graph.to_state()
        tensors = {"graph.weights": torch.from_numpy(arrays["weights"]), "graph.present": torch.from_numpy(arrays["present"])}
        for k, p in self.blocks.params.items():
            tensors[f"blocks.{k}"] = p.detach().clone()
        for name, memories in self.optimizer.state.items():
            for key, mem in memories.items():
                tensors[f"optimizer.{name}.{key}"] = mem.clone()
        for area, h in (self.carried or {}).items():
            tensors[f"carried.{area}"] = h.clone()
        state = {k: getattr(self, k) for k in COUNTERS}
        state.update(
            scenario=self.scenario.name, seed=self.scenario.seed, graph=graph_state,
            optimizer_steps=self.optimizer.steps, carried=self.carried is not None,
            rng_structure=self.rng_structure.bit_generator.state, rng_init=self.rng_init.bit_generator.state,
            rng_data=self.rng_data.bit_generator.state, tasks=[t.get_state() for t in self.tasks],
            next_char=getattr(self, "next_char", None),
        )  # fmt: skip
        return state, tensors

    def restore(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        arrays = {"weights": tensors["graph.weights"].numpy(), "present": tensors["graph.present"].numpy()}
        self.graph = Graph.from_state(state["graph"], arrays)
        self.blocks = Blocks(self.graph, projections_of(self.scenario.network, self.graph), dtype=self.dtype,
                             device=self.device)  # fmt: skip
        on = lambda t: t.to(device=self.device, dtype=self.dtype)  # noqa: E731
        for k in self.blocks.params:
            self.blocks.params[k] = on(tensors[f"blocks.{k}"]).clone().requires_grad_(True)
        self.optimizer.steps = state["optimizer_steps"]
        for name in self.optimizer.state:
            prefix = f"optimizer.{name}."
            self.optimizer.state[name] = {k[len(prefix):]: on(v) for k, v in tensors.items() if k.startswith(prefix)}
        self.carried = None
        if state["carried"]:
            self.carried = {k[len("carried."):]: on(v) for k, v in tensors.items() if k.startswith("carried.")}
        for key in COUNTERS:
            setattr(self, key, state[key])
        self.rng_structure.bit_generator.state = state["rng_structure"]
        self.rng_init.bit_generator.state = state["rng_init"]
        self.rng_data.bit_generator.state = state["rng_data"]
        for task, task_state in zip(self.tasks, state["tasks"]):
            task.set_state(task_state)
        if self.sequence:
            self.next_char = state["next_char"]

    def write_back(self) -> None:
        self.blocks.write_back(self.graph)


def _output(blocks: Blocks, h: dict[str, torch.Tensor], activation: str) -> torch.Tensor:
    """(T, n_output) logits of a window from its (T, n) hidden activities: the output area is
    last, so it reads only current steps and all of them go through one matrix product."""
    return forward(blocks, h["input"], activation, areas=["output"], given=h)["output"]
