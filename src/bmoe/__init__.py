"""bmoe: trustworthy distributed Mixture-of-Experts (B-MoE, Zhu et al., 2025)."""

__version__ = "0.1.0"
