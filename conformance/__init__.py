"""Apple's own op tests as the reference evaluator's conformance suite.

coremltools 9.0 ships its MIL-op and NeuralNetwork-layer tests in the wheel. Each builds a
model, computes the expected outputs with numpy or torch, calls ``MLModel.predict`` and
compares with Apple's tolerances. ``python -m conformance`` runs them from site-packages with
``MLModel.predict`` redirected to ``coreml_reference.predict`` (``plugin``), then counts each
test class's outcomes into ``results/conformance.{json,md}`` (``report``).
"""
