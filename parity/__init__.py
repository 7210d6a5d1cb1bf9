"""An Xcode parity package for one converted model: ``coreml-routes export-xctest``.

A Swift package a Mac user runs with ``swift test`` (or ⌘U in Xcode, on a Mac or an iPhone):
the model as a resource, PyTorch's golden inputs and outputs as JSON, and an XCTest case that
compiles the model with ``MLModel.compileModel(at:)`` and, per compute unit, predicts and
compares every output within a tolerance derived from the reference evaluator's fp16 result
(``parity.tolerance``). Nothing here needs a Mac; running the package does.
"""
from parity.export import ExportError, export   # noqa: F401
