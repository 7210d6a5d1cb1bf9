"""Every intermediate value of the graph a route converts, saved by the name the converter
will give it — so a divergence search can hold each Core ML blob / MIL var against PyTorch.

- TorchScript routes (v4, v9): trace as the route does, inline, make every tensor value a
  graph output, run once. coremltools names its vars after the TorchScript debug names
  (ML Programs sanitise them: ``input.3`` -> ``input_3``, ``15`` -> ``var_15``; the host
  applies the same rule when matching).
- torch.export routes (v9-export): run the decomposed program's FX graph node by node;
  coremltools names its vars after the FX node names.
- v3 (ONNX): onnx-coreml names blobs after ONNX values, so the reference is the ONNX model
  itself: we write a copy of model.onnx with every float value made a graph output, and the
  host runs it with onnxruntime (this env has no ONNX runtime).
Each route's ``Backend.intermediates`` calls the function for its kind, after a successful
conversion. Runs on Python 3.7 / torch 1.4 and later.
"""
from __future__ import annotations


def save_onnx(source, path):
    """v3: copy ``source`` (the exported model.onnx) to ``path`` (.onnx) with every float
    intermediate as an extra graph output."""
    import onnx
    from onnx import TensorProto, shape_inference
    model = shape_inference.infer_shapes(onnx.load(source))
    graph = model.graph
    declared = set(o.name for o in graph.output)
    added = 0
    for info in graph.value_info:
        if info.name not in declared and info.type.tensor_type.elem_type == TensorProto.FLOAT:
            graph.output.extend([info])
            added += 1
    onnx.save(model, path)
    return {"kind": "onnx", "count": added, "file": path}


def save_torchscript(traced, job, path):
    """TorchScript routes: every tensor of the graph coremltools converts, by debug name."""
    return _save(_torchscript_values(traced, job), path, "torchscript")


def save_exported(program, job, path):
    """torch.export routes: every tensor of the program's FX graph, by node name."""
    return _save(_exported_values(program, job), path, "fx")


def _save(values, path, kind):
    """Write float tensors to ``path`` (.npz, name -> float32); the summary for the record."""
    import numpy as np
    arrays = {}
    for name, value in values:
        if hasattr(value, "detach") and value.dtype.is_floating_point and name not in arrays:
            arrays[name] = value.detach().numpy().astype(np.float32)
    np.savez(path, **arrays)
    return {"kind": kind, "count": len(arrays), "file": path}


def _torchscript_values(traced, job):
    """(debug name, tensor) for every tensor value of the graph coremltools converts.

    Debug names are renumbered by the converter's own graph passes, so we let coremltools
    prepare the graph exactly as it will for conversion, then run that graph."""
    import torch
    graph, params = _converter_graph(traced)
    values = [o for node in graph.nodes() for o in node.outputs()
              if o.type().kind() == "TensorType"]
    # Return them all as one tuple instead of the graph's own result (torch 1.7 has no
    # Graph.eraseOutput, so re-point the return node instead).
    pack = graph.create("prim::TupleConstruct", values, 1)
    graph.appendNode(pack)
    pack.output().setType(torch._C.TupleType([v.type() for v in values]))
    ret = graph.return_node()
    ret.replaceInputWith(list(ret.inputs())[0], pack.output())
    user = list(job.torch_inputs())
    args = []
    for value in graph.inputs():    # self (ct 9), the user inputs, then params (ct 4)
        name = value.debugName()
        if value.type().kind() == "ClassType":
            args.append(traced._c)
        elif name in params:
            args.append(params[name])
        else:
            args.append(user.pop(0))
    run = torch._C._create_function_from_graph("coreml_routes_intermediates", graph)
    with torch.no_grad():
        results = run(*args)
    return [(v.debugName(), r) for v, r in zip(values, results)]


def _converter_graph(traced):
    """The inlined, canonicalised graph and params as coremltools' torch frontend builds it."""
    try:   # coremltools 6 and later
        from coremltools.converters.mil.frontend.torch.torchscript_utils import \
            _expand_and_optimize_ir
        graph, params, buffers = _expand_and_optimize_ir(traced)
        params = dict(params, **buffers)
    except ImportError:   # coremltools 4
        from coremltools.converters.mil.frontend.torch.converter import TorchConverter
        graph, params = TorchConverter._expand_and_optimize_ir(traced)
    return graph, params


def _exported_values(program, job):
    """(FX node name, tensor) for every node of the exported program's graph."""
    import torch
    import torch.fx

    found = []

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super(Recorder, self).run_node(node)
            # A tuple result (native batch norm: output, mean, invstd) becomes one MIL op
            # named after the node, whose value is the first element.
            first = result[0] if isinstance(result, (tuple, list)) and result else result
            if isinstance(first, torch.Tensor):
                found.append((node.name, first))
            return result

    # Lifted parameters are graph inputs: feed them in signature order, then the user inputs.
    sig = program.graph_signature
    state = dict(program.state_dict)
    state.update(getattr(program, "constants", {}) or {})
    params = [state[sig.inputs_to_parameters.get(n) or sig.inputs_to_buffers.get(n)
                    or sig.inputs_to_lifted_tensor_constants.get(n)]
              for n in _placeholders(program) if n not in sig.user_inputs]
    with torch.no_grad():
        Recorder(program.graph_module).run(*(params + list(job.torch_inputs())))
    return found


def _placeholders(program):
    return [n.name for n in program.graph_module.graph.nodes if n.op == "placeholder"]
