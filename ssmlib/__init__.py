"""ssmlib: learning and querying fast generative models for RL (Buesing et al. 2018), reproduced."""

__version__ = "0.1.0"
