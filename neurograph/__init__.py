"""neurograph: neural networks whose structure evolves while they learn.

The network is an explicit typed graph (:mod:`neurograph.graph`) compiled to
torch tensors for training (:mod:`neurograph.compile`).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
