"""coreml-routes: convert PyTorch models to Core ML by every route, check and benchmark them."""

__version__ = "0.1.0"
