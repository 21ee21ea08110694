"""Typed neuron graph: the structural truth of a network.

A :class:`Graph` holds living :class:`Neuron` objects keyed by a stable integer
id that is never reused, a bounded graveyard of deleted neurons with their last
wiring (:class:`Fossil`), the metadata of every neuron that ever died, and an
event log (:class:`Event`) of every structural change.

Storage choice
--------------
Neurons are Python objects: even the largest model (a 5,000-neuron URN) has only
thousands of them. Connections are *not*: their weights live in one dense
``(capacity, capacity)`` float64 block indexed by a per-neuron storage slot,
``weights[target_slot, source_slot]``, with a boolean ``present`` block saying
which connections exist. A 5,000-neuron recurrent net with 25 million potential
connections therefore costs ~225 MB and no per-connection objects.
:class:`Connection` objects are read-only views built on demand (export,
inspection). A connection's ``born`` cycle defaults to the later birth of its
two ends; connections made later, or restored from a dead neuron, keep their
own ``born`` / ``inherited_from`` in a small side table. Slots of deleted
neurons are zeroed and reused; the block doubles when full, so a network
whose size is known up front should be built with ``Graph(capacity=S)``
(the URN does) to avoid reserving up to twice the rows.

float64 storage makes compile -> write back -> compile exact for float32 and
float64 compiled tensors alike.

Every method that takes a neuron takes its id or the :class:`Neuron` itself
(``NeuronRef``), so what one view returns another accepts:

>>> g = Graph()
>>> x = g.add_neuron("input")
>>> h = g.add_neuron("hidden")
>>> g.connect(x, h, 0.5)
>>> [g.lineage(n) for n in g.hidden], g.incoming(h)
([[1]], {0: 0.5})
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Literal, Mapping, Union

import numpy as np

__all__ = [
    "ROLES",
    "Role",
    "Neuron",
    "Connection",
    "Fossil",
    "Event",
    "Area",
    "Graph",
    "GraphError",
    "neuron_label",
    "NeuronRef",
]

Role = Literal["input", "hidden", "output"]
ROLES: tuple[Role, ...] = ("input", "hidden", "output")
_PREFIX = {"input": "i", "hidden": "h", "output": "o"}


class GraphError(ValueError):
    """A structural operation that the graph cannot perform."""


def neuron_label(neuron_id: int, role: str) -> str:
    """Human label of a neuron: role initial and id, e.g. ``h17``."""
    return f"{_PREFIX[role]}{neuron_id}"


@dataclass
class Neuron:
    """One neuron. Age is never stored: ask the graph (``graph.age(id)``)."""

    id: int
    role: Role
    born: int
    died: int | None = None
    generation: int = 0  # number of inheritances in its lineage
    inherited_from: int | None = None  # dead neuron whose wiring it took
    multiplier: float = 1.0
    bias: float = 0.0
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tags: frozenset[str] = frozenset()
    area: str = ""  # the area (layer) of a multi-area network; "" where the model has none
    slot: int = field(default=-1, repr=False, compare=False)

    @property
    def label(self) -> str:
        return neuron_label(self.id, self.role)


@dataclass(frozen=True)
class Connection:
    """Read-only view of one connection ``source -> target``."""

    source: int
    target: int
    weight: float
    born: int
    inherited_from: int | None = None


@dataclass(frozen=True)
class Fossil:
    """A deleted neuron with its wiring at death (neuron id -> weight)."""

    neuron: Neuron
    incoming: Mapping[int, float]
    outgoing: Mapping[int, float]


@dataclass(frozen=True)
class Event:
    """One structural change. ``other`` is the far end of a connection event."""

    cycle: int
    kind: str  # add | delete | connect | disconnect | rewire
    neuron: int
    reason: str = ""
    other: int = -1
    age: int = 0  # age of ``neuron`` (of ``area`` for an area event) at the event, cycles
    lineage: str = ""  # e.g. "h3>h9>h17", oldest ancestor first
    area: str = ""  # the area an add_area / delete_area event is about

    def to_dict(self) -> dict:
        out = {
            "cycle": self.cycle,
            "kind": self.kind,
            "neuron": self.neuron,
            "reason": self.reason,
            "other": self.other,
            "age": self.age,
            "lineage": self.lineage,
        }
        if self.area:
            out["area"] = self.area
        return out


@dataclass
class Area:
    """A group of neurons treated as one higher-order node (a layer or a cortical area).

    Areas have names that are never reused, a birth and (once deleted) a death
    cycle, like neurons; ``grown_from`` names the area a grown one was placed
    after (its lineage in depth). A graph whose model has no areas has none.
    """

    name: str
    born: int
    died: int | None = None
    kind: str = "area"  # area | layer (a layer can be added and deleted by a depth rule)
    grown_from: str | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "born": self.born, "died": self.died, "kind": self.kind, "grown_from": self.grown_from}


NeuronRef = Union[int, Neuron]  # a neuron given by id or as the object a view returned


def _id(neuron: NeuronRef) -> int:
    """The id of a neuron given by id or as a :class:`Neuron`."""
    return neuron.id if isinstance(neuron, Neuron) else neuron


def _ids(neurons: Iterable[NeuronRef]) -> list[int]:
    return [_id(n) for n in neurons]


class Graph:
    """Neurons, connections, graveyard and event log of one network.

    ``cycle`` is the current training cycle; the training loop advances it and
    every event and age is measured against it.
    """

    def __init__(self, *, graveyard_size: int = 64, capacity: int = 16) -> None:
        if graveyard_size < 0:
            raise GraphError(f"graveyard_size must be >= 0, got {graveyard_size}")
        self.cycle = 0
        self.neurons: dict[int, Neuron] = {}
        self.dead: dict[int, Neuron] = {}  # metadata of every neuron that died
        self.graveyard: deque[Fossil] = deque(maxlen=graveyard_size)
        self.events: list[Event] = []
        self.meta: dict[str, str] = {}  # free-form scenario name, seed, ...
        self._next_id = 0
        self._weights = np.zeros((capacity, capacity))
        self._present = np.zeros((capacity, capacity), dtype=bool)
        self._free_slots = list(range(capacity - 1, -1, -1))
        # (source, target) -> (born, inherited_from) for connections whose
        # birth differs from the default, and the keys touching each neuron.
        self._conn_meta: dict[tuple[int, int], tuple[int, int | None]] = {}
        self._meta_keys: dict[int, set[tuple[int, int]]] = {}
        self.areas: dict[str, Area] = {}  # living areas in evaluation order
        self.dead_areas: dict[str, Area] = {}

    # ----------------------------------------------------------------- views
    def __len__(self) -> int:
        return len(self.neurons)

    def __contains__(self, neuron_id: NeuronRef) -> bool:
        return _id(neuron_id) in self.neurons

    def neuron(self, neuron_id: NeuronRef) -> Neuron:
        """The living neuron with this id (:class:`GraphError` if none)."""
        neuron_id = _id(neuron_id)
        try:
            return self.neurons[neuron_id]
        except KeyError:
            raise GraphError(f"no living neuron with id {neuron_id}") from None

    def ids(self, role: Role | None = None) -> list[int]:
        """Ids of living neurons, ascending, optionally of one role."""
        return sorted(i for i, n in self.neurons.items() if role is None or n.role == role)

    def by_role(self, role: Role) -> list[Neuron]:
        """Living neurons of one role, ascending id."""
        return [self.neurons[i] for i in self.ids(role)]

    @property
    def inputs(self) -> list[Neuron]:
        return self.by_role("input")

    @property
    def hidden(self) -> list[Neuron]:
        return self.by_role("hidden")

    @property
    def outputs(self) -> list[Neuron]:
        return self.by_role("output")

    @property
    def next_id(self) -> int:
        """Id the next added neuron will get."""
        return self._next_id

    def age(self, neuron_id: NeuronRef) -> int:
        """Cycles since birth (to death for a dead neuron)."""
        n = self._record(neuron_id)
        end = self.cycle if n.died is None else n.died
        return end - n.born

    def ages(self, ids: Iterable[NeuronRef] | None = None) -> np.ndarray:
        """Ages of living neurons (default: all, ascending id), int64."""
        ids = self.ids() if ids is None else _ids(ids)
        return np.array([self.cycle - self.neuron(i).born for i in ids], dtype=np.int64)

    def lineage(self, neuron_id: NeuronRef) -> list[int]:
        """Chain of ``inherited_from`` ids, oldest ancestor first, ending at ``neuron_id``."""
        neuron_id = _id(neuron_id)
        chain = [neuron_id]
        parent = self._record(neuron_id).inherited_from
        while parent is not None:
            chain.append(parent)
            parent = self._record(parent).inherited_from
        return chain[::-1]

    def lineage_label(self, neuron_id: NeuronRef) -> str:
        """Lineage flattened for files, e.g. ``h3>h9>h17``."""
        return ">".join(self._record(i).label for i in self.lineage(neuron_id))

    def _record(self, neuron_id: NeuronRef) -> Neuron:
        neuron_id = _id(neuron_id)
        n = self.neurons.get(neuron_id) or self.dead.get(neuron_id)
        if n is None:
            raise GraphError(f"unknown neuron id {neuron_id}")
        return n

    # ----------------------------------------------------------- connections
    def has_connection(self, source: NeuronRef, target: NeuronRef) -> bool:
        s, t = self.neuron(source).slot, self.neuron(target).slot
        return bool(self._present[t, s])

    def connection(self, source: NeuronRef, target: NeuronRef) -> Connection:
        """View of one existing connection."""
        source, target = _id(source), _id(target)
        if not self.has_connection(source, target):
            raise GraphError(f"no connection {source} -> {target}")
        return self._view(source, target)

    def _view(self, source: int, target: int) -> Connection:
        s, t = self.neurons[source], self.neurons[target]
        born, inherited = self._conn_meta.get((source, target), (max(s.born, t.born), None))
        return Connection(source, target, float(self._weights[t.slot, s.slot]), born, inherited)

    def connections(self) -> Iterator[Connection]:
        """All connections as views (per-connection cost: for export, not training)."""
        ids = self.ids()
        slots = np.array([self.neurons[i].slot for i in ids], dtype=np.int64)
        tgt, src = np.nonzero(self._present[np.ix_(slots, slots)])
        for t, s in zip(tgt.tolist(), src.tolist()):
            yield self._view(ids[s], ids[t])

    def num_connections(self) -> int:
        return int(self._present.sum())

    def connection_arrays(self) -> tuple[list[int], dict[str, np.ndarray]]:
        """:meth:`connections` as columns, without an object per connection (for export).

        Returns the living ids (ascending) and ``source``, ``target`` (E,) int64
        row indices into them, ``weight`` (E,) float64, ``born`` (E,) int64 and
        ``inherited_from`` (E,) int64 (-1: none), in the order of :meth:`connections`.
        """
        ids = self.ids()
        slots = np.array([self.neurons[i].slot for i in ids], dtype=np.int64)
        tgt, src = np.nonzero(self._present[np.ix_(slots, slots)])
        born_of = np.array([self.neurons[i].born for i in ids], dtype=np.int64)
        born = np.maximum(born_of[tgt], born_of[src])
        inherited = np.full(len(tgt), -1, dtype=np.int64)
        if self._conn_meta:  # the few connections whose birth or origin differs from the default
            row = {i: k for k, i in enumerate(ids)}
            keys, values = zip(*self._conn_meta.items())
            flat = np.array([row[t] * len(ids) + row[s] for s, t in keys], dtype=np.int64)
            at = np.searchsorted(tgt * len(ids) + src, flat)  # nonzero's order is row-major: sorted
            born[at] = [b for b, _ in values]
            inherited[at] = [-1 if parent is None else parent for _, parent in values]
        weight = self._weights[slots[tgt], slots[src]]
        return ids, {"source": src, "target": tgt, "weight": weight, "born": born, "inherited_from": inherited}

    def incoming(self, neuron_id: NeuronRef) -> dict[int, float]:
        """Source id -> weight of every connection into this neuron."""
        slot = self.neuron(neuron_id).slot
        return self._wiring(self._present[slot, :], self._weights[slot, :])

    def outgoing(self, neuron_id: NeuronRef) -> dict[int, float]:
        """Target id -> weight of every connection out of this neuron."""
        slot = self.neuron(neuron_id).slot
        return self._wiring(self._present[:, slot], self._weights[:, slot])

    def _wiring(self, present: np.ndarray, weights: np.ndarray) -> dict[int, float]:
        by_slot = {n.slot: i for i, n in self.neurons.items()}
        return {by_slot[s]: float(weights[s]) for s in np.flatnonzero(present).tolist()}

    def block(self, targets: list[NeuronRef], sources: list[NeuronRef]) -> tuple[np.ndarray, np.ndarray]:
        """Weights and presence of ``targets x sources``, float64 and bool copies."""
        ix = np.ix_(self._slots(targets), self._slots(sources))
        return self._weights[ix].copy(), self._present[ix].copy()

    def set_weights(self, targets: list[NeuronRef], sources: list[NeuronRef], weights: np.ndarray) -> None:
        """Overwrite the weights of existing connections (absent ones stay absent).

        A value change, not a structural change: no event is logged.
        """
        ix = np.ix_(self._slots(targets), self._slots(sources))
        self._weights[ix] = np.where(self._present[ix], np.asarray(weights, dtype=np.float64), 0.0)

    def _slots(self, ids: Iterable[NeuronRef]) -> np.ndarray:
        return np.array([self.neuron(i).slot for i in ids], dtype=np.int64)

    # ------------------------------------------------------------ structure
    def add_neuron(
        self,
        role: Role,
        *,
        bias: float = 0.0,
        multiplier: float = 1.0,
        position: tuple[float, float, float] = (0.0, 0.0, 0.0),
        tags: Iterable[str] = (),
        inherited_from: NeuronRef | None = None,
        area: str = "",
        reason: str = "",
    ) -> Neuron:
        """Create a neuron with a fresh id; it has no connections yet.

        ``area``: the area it belongs to, one of :attr:`areas` when the graph has any."""
        if role not in ROLES:
            raise GraphError(f"role must be one of {ROLES}, got {role!r}")
        if area and self.areas and area not in self.areas:
            raise GraphError(f"no living area {area!r}; areas: {', '.join(self.areas)}")
        generation = 0
        if inherited_from is not None:
            inherited_from = _id(inherited_from)
            if inherited_from not in self.dead:
                raise GraphError(f"can only inherit from a dead neuron, {inherited_from} is not")
            generation = self.dead[inherited_from].generation + 1
        neuron = Neuron(
            id=self._next_id,
            role=role,
            born=self.cycle,
            generation=generation,
            inherited_from=inherited_from,
            multiplier=float(multiplier),
            bias=float(bias),
            position=tuple(float(v) for v in position),
            tags=frozenset(tags),
            area=area,
            slot=self._take_slot(),
        )
        self._next_id += 1
        self.neurons[neuron.id] = neuron
        self._log("add", neuron.id, reason)
        return neuron

    def delete_neuron(self, neuron_id: NeuronRef, *, reason: str = "") -> Fossil:
        """Remove a neuron and its connections; its wiring goes to the graveyard."""
        neuron = self.neuron(neuron_id)
        neuron_id = neuron.id
        self._log("delete", neuron_id, reason)
        fossil = Fossil(
            neuron=replace(neuron, died=self.cycle, slot=-1),
            incoming=self.incoming(neuron_id),
            outgoing=self.outgoing(neuron_id),
        )
        for key in self._meta_keys.pop(neuron_id, set()):
            self._conn_meta.pop(key, None)
            other = key[0] if key[1] == neuron_id else key[1]
            self._meta_keys.get(other, set()).discard(key)
        slot = neuron.slot
        self._weights[slot, :] = 0.0
        self._weights[:, slot] = 0.0
        self._present[slot, :] = False
        self._present[:, slot] = False
        self._free_slots.append(slot)
        del self.neurons[neuron_id]
        self.dead[neuron_id] = fossil.neuron
        if self.graveyard.maxlen:
            self.graveyard.append(fossil)
        return fossil

    def connect(
        self,
        source: NeuronRef,
        target: NeuronRef,
        weight: float,
        *,
        inherited_from: NeuronRef | None = None,
        reason: str = "",
    ) -> None:
        """Create (or overwrite) the connection ``source -> target``."""
        s, t = self.neuron(source), self.neuron(target)
        source, target = s.id, t.id
        inherited_from = None if inherited_from is None else _id(inherited_from)
        self._weights[t.slot, s.slot] = float(weight)
        self._present[t.slot, s.slot] = True
        self._set_meta(source, target, inherited_from)
        self._log("connect", target, reason, other=source)

    def disconnect(self, source: NeuronRef, target: NeuronRef, *, reason: str = "") -> None:
        """Remove the connection ``source -> target``."""
        source, target = _id(source), _id(target)
        if not self.has_connection(source, target):
            raise GraphError(f"no connection {source} -> {target}")
        s, t = self.neurons[source], self.neurons[target]
        self._weights[t.slot, s.slot] = 0.0
        self._present[t.slot, s.slot] = False
        self._drop_meta((source, target))
        self._log("disconnect", target, reason, other=source)

    def wire(
        self,
        targets: list[NeuronRef],
        sources: list[NeuronRef],
        weights: np.ndarray,
        *,
        present: np.ndarray | None = None,
        inherited_from: NeuronRef | None = None,
        reason: str = "",
    ) -> None:
        """Set a whole ``targets x sources`` block of connections at once.

        ``inherited_from`` marks every connection of the block as restored from
        that dead neuron (one side-table entry per connection: for one neuron's
        wiring, not for building large networks).

        ``present`` (bool, same shape) says which entries exist; default: all.
        Vectorised: use this to wire a new neuron or build a dense network.
        Logged as one ``rewire`` event whose ``neuron`` is the single target
        (else -1) and ``other`` the single source (else -1).
        """
        targets, sources = _ids(targets), _ids(sources)
        inherited_from = None if inherited_from is None else _id(inherited_from)
        weights = np.asarray(weights, dtype=np.float64)
        shape = (len(targets), len(sources))
        if weights.shape != shape:
            raise GraphError(f"weights shape {weights.shape} != {shape} (targets x sources)")
        mask = np.ones(shape, dtype=bool) if present is None else np.asarray(present, dtype=bool)
        if mask.shape != shape:
            raise GraphError(f"present shape {mask.shape} != {shape} (targets x sources)")
        ix = np.ix_(self._slots(targets), self._slots(sources))
        created = mask & ~self._present[ix]
        self._present[ix] = mask
        self._weights[ix] = np.where(mask, weights, 0.0)
        self._rewire_meta(targets, sources, created, mask)
        if inherited_from is not None:
            for r, c in zip(*np.nonzero(mask)):
                self._set_meta(sources[c], targets[r], inherited_from)
        self._log(
            "rewire",
            targets[0] if len(targets) == 1 else -1,
            reason,
            other=sources[0] if len(sources) == 1 else -1,
        )

    def _rewire_meta(
        self, targets: list[int], sources: list[int], created: np.ndarray, present: np.ndarray
    ) -> None:
        """Side-table upkeep of a block rewire: forget removed or re-created
        connections (kept ones keep their birth), date late births."""
        row = {t: r for r, t in enumerate(targets)}
        col = {s: c for c, s in enumerate(sources)}
        for key in [k for k in self._conn_meta if k[1] in row and k[0] in col]:
            r, c = row[key[1]], col[key[0]]
            if created[r, c] or not present[r, c]:
                self._drop_meta(key)
        born_t = np.array([self.neurons[i].born for i in targets])
        born_s = np.array([self.neurons[i].born for i in sources])
        late = created & (self.cycle > np.maximum(born_t[:, None], born_s[None, :]))
        for r, c in zip(*np.nonzero(late)):
            self._set_meta(sources[c], targets[r], None)

    def _drop_meta(self, key: tuple[int, int]) -> None:
        self._conn_meta.pop(key, None)
        for end in key:
            self._meta_keys.get(end, set()).discard(key)

    def _set_meta(self, source: int, target: int, inherited_from: int | None) -> None:
        key = (source, target)
        default_born = max(self.neurons[source].born, self.neurons[target].born)
        if inherited_from is None and self.cycle == default_born:
            self._conn_meta.pop(key, None)
            return
        self._conn_meta[key] = (self.cycle, inherited_from)
        for end in key:
            self._meta_keys.setdefault(end, set()).add(key)

    # ----------------------------------------------------------------- areas
    def add_area(self, name: str, *, before: str | None = None, kind: str = "area",
                 grown_from: str | None = None, reason: str = "") -> Area:
        """Create an empty area, last in evaluation order or just ``before`` another."""
        if not name or name in self.areas or name in self.dead_areas:
            raise GraphError(f"area name {name!r} is empty or already used (names are never reused)")
        if before is not None and before not in self.areas:
            raise GraphError(f"no living area {before!r} to place {name!r} before")
        area = Area(name=name, born=self.cycle, kind=kind, grown_from=grown_from)
        order = list(self.areas.values())
        at = len(order) if before is None else list(self.areas).index(before)
        order.insert(at, area)
        self.areas = {a.name: a for a in order}
        self.events.append(Event(cycle=self.cycle, kind="add_area", neuron=-1, reason=reason, area=name))
        return area

    def delete_area(self, name: str, *, reason: str = "") -> Area:
        """Remove an area whose neurons have all been deleted."""
        if name not in self.areas:
            raise GraphError(f"no living area {name!r}")
        if self.area_ids(name):
            raise GraphError(f"area {name!r} still has living neurons: delete them first")
        area = self.areas.pop(name)
        self.events.append(
            Event(cycle=self.cycle, kind="delete_area", neuron=-1, reason=reason, age=self.cycle - area.born, area=name)
        )
        area.died = self.cycle
        self.dead_areas[name] = area
        return area

    def area_ids(self, name: str) -> list[int]:
        """Ids of the living neurons of area ``name``, ascending."""
        return sorted(i for i, n in self.neurons.items() if n.area == name)

    def area_age(self, name: str) -> int:
        """Cycles since the area was added (to its deletion for a dead one)."""
        area = self.areas.get(name) or self.dead_areas.get(name)
        if area is None:
            raise GraphError(f"no area {name!r}")
        return (self.cycle if area.died is None else area.died) - area.born

    def _take_slot(self) -> int:
        if not self._free_slots:
            old = self._weights.shape[0]
            new = max(2 * old, 4)
            weights = np.zeros((new, new))
            present = np.zeros((new, new), dtype=bool)
            weights[:old, :old] = self._weights
            present[:old, :old] = self._present
            self._weights, self._present = weights, present
            self._free_slots = list(range(new - 1, old - 1, -1))
        return self._free_slots.pop()

    def _log(self, kind: str, neuron_id: int, reason: str, *, other: int = -1) -> None:
        known = neuron_id in self.neurons or neuron_id in self.dead
        self.events.append(
            Event(
                cycle=self.cycle,
                kind=kind,
                neuron=neuron_id,
                reason=reason,
                other=other,
                age=self.age(neuron_id) if known else 0,
                lineage=self.lineage_label(neuron_id) if known else "",
            )
        )

    # ------------------------------------------------------------ utilities
    def norms(self, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """L1 norms of incoming and outgoing weights per neuron, float64."""
        living = self.ids()
        slots = self._slots(living)
        # over the living neurons in id order: the same sums however storage slots are laid out
        # (a graph restored from a checkpoint holds them in other slots than the one it was saved from)
        block = self._weights[np.ix_(slots, slots)]  # (N, N) copy, target x source, made |w| in place
        np.abs(block, out=block)
        if ids is None:
            return block.sum(axis=1), block.sum(axis=0)
        row = {i: k for k, i in enumerate(living)}
        rows = np.array([row[i] if i in row else self.neuron(i).id for i in _ids(ids)], dtype=np.int64)  # GraphError
        return block[rows].sum(axis=1), block[:, rows].sum(axis=0)

    def check(self) -> None:
        """Raise :class:`GraphError` if internal invariants are broken."""
        slots = [n.slot for n in self.neurons.values()]
        if len(set(slots)) != len(slots):
            raise GraphError("two neurons share a storage slot")
        if set(self.neurons) & set(self.dead):
            raise GraphError("a neuron is both alive and dead")
        if any(i >= self._next_id for i in list(self.neurons) + list(self.dead)):
            raise GraphError("a neuron id is not below next_id")
        free = np.array(sorted(self._free_slots), dtype=np.int64)
        if free.size and (self._present[free, :].any() or self._present[:, free].any()):
            raise GraphError("a free slot still has connections")
        if self.areas and any(n.area and n.area not in self.areas for n in self.neurons.values()):
            raise GraphError("a living neuron belongs to an area that is not living")
        for i in self.neurons:
            for a in self.lineage(i)[:-1]:
                if a not in self.dead:
                    raise GraphError(f"ancestor {a} of {i} is not a dead neuron")

    # --------------------------------------------------------- persistence
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything about the graph as (JSON-able dict, arrays), for checkpoints.

        Arrays: ``weights`` (N, N) float64 and ``present`` (N, N) uint8 over the
        living neurons in ascending id order.
        """
        ids = self.ids()
        weights, present = self.block(ids, ids)
        state = {
            "cycle": self.cycle,
            "next_id": self._next_id,
            "meta": dict(self.meta),
            "graveyard_size": self.graveyard.maxlen,
            "neurons": [_neuron_dict(self.neurons[i]) for i in ids],
            "dead": [_neuron_dict(n) for n in self.dead.values()],
            "graveyard": [
                {
                    "neuron": f.neuron.id,
                    "incoming": [[k, w] for k, w in f.incoming.items()],
                    "outgoing": [[k, w] for k, w in f.outgoing.items()],
                }
                for f in self.graveyard
            ],
            "events": [e.to_dict() for e in self.events],
            "connections": [[s, t, born, inh] for (s, t), (born, inh) in self._conn_meta.items()],
        }
        if self.areas or self.dead_areas:
            state["areas"] = [a.to_dict() for a in self.areas.values()]
            state["dead_areas"] = [a.to_dict() for a in self.dead_areas.values()]
        return state, {"weights": weights, "present": present.astype(np.uint8)}

    @classmethod
    def from_state(cls, state: dict, arrays: Mapping[str, np.ndarray]) -> "Graph":
        """Inverse of :meth:`to_state`."""
        living = [_neuron_from_dict(d) for d in state["neurons"]]
        graph = cls(graveyard_size=state["graveyard_size"] or 0, capacity=max(4, len(living)))
        graph.cycle, graph._next_id, graph.meta = state["cycle"], state["next_id"], dict(state["meta"])
        for slot, n in enumerate(living):
            n.slot = slot
            graph.neurons[n.id] = n
        graph._free_slots = list(range(graph._weights.shape[0] - 1, len(living) - 1, -1))
        n = len(living)
        graph._weights[:n, :n] = np.asarray(arrays["weights"], dtype=np.float64)
        graph._present[:n, :n] = np.asarray(arrays["present"]).astype(bool)
        graph.dead = {d["id"]: _neuron_from_dict(d) for d in state["dead"]}
        for f in state["graveyard"]:
            graph.graveyard.append(
                Fossil(
                    neuron=graph.dead[f["neuron"]],
                    incoming={int(k): float(w) for k, w in f["incoming"]},
                    outgoing={int(k): float(w) for k, w in f["outgoing"]},
                )
            )
        graph.events = [Event(**e) for e in state["events"]]
        graph.areas = {a["name"]: Area(**a) for a in state.get("areas", [])}
        graph.dead_areas = {a["name"]: Area(**a) for a in state.get("dead_areas", [])}
        for s, t, born, inh in state["connections"]:
            graph._conn_meta[(s, t)] = (born, inh)
            for end in (s, t):
                graph._meta_keys.setdefault(end, set()).add((s, t))
        return graph


def _neuron_dict(n: Neuron) -> dict:
    return {
        "id": n.id,
        "role": n.role,
        "born": n.born,
        "died": n.died,
        "generation": n.generation,
        "inherited_from": n.inherited_from,
        "multiplier": n.multiplier,
        "bias": n.bias,
        "position": list(n.position),
        "tags": sorted(n.tags),
        **({"area": n.area} if n.area else {}),
    }


def _neuron_from_dict(d: dict) -> Neuron:
    return Neuron(
        id=d["id"],
        role=d["role"],
        born=d["born"],
        died=d["died"],
        generation=d["generation"],
        inherited_from=d["inherited_from"],
        multiplier=d["multiplier"],
        bias=d["bias"],
        position=tuple(d["position"]),
        tags=frozenset(d["tags"]),
        area=d.get("area", ""),
    )
