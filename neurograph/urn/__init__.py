"""Golkar's Unstructured Recursive Network (URN) on the typed neuron graph.

Modules: :mod:`~neurograph.urn.model` (update rules and loss),
:mod:`~neurograph.urn.geometry` (eq. 8 lattice), :mod:`~neurograph.urn.data`
(spheres, CIFAR-10 binary, generated bars), :mod:`~neurograph.urn.analysis`
(active network, layers, ablation), :mod:`~neurograph.urn.deletion` (lifetime
deletion of silent neurons), :mod:`~neurograph.urn.connectome` (GraphML and
figures), :mod:`~neurograph.urn.scenario` and :mod:`~neurograph.urn.train`.
See docs/urn.md.
"""

__all__: list[str] = []
