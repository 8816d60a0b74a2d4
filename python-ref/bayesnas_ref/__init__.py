"""PyTorch reference for the BayesNAS TypeScript harness (NCHW)."""
__version__ = "0.1.0"
