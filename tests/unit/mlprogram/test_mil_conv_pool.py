"""ML Program evaluator: convolution and pooling (coreml_reference/mlprogram/ops/conv_pool.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from mil_helpers import (case_list, check_case, B8, F, W_1D, W_CONV, W_DW, W_GROUP, X3, X4, mb,
                        randn, t)

CASES, case = case_list()

# convolutions
case("conv_same", {"x": X4}, lambda x: mb.conv(x=x, weight=W_CONV, bias=B8, pad_type="same"),
     lambda x: F.conv2d(t(x), t(W_CONV), t(B8), padding=1).numpy())
case("conv_valid_strided", {"x": X4},
     lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 3], pad_type="valid"),
     lambda x: F.conv2d(t(x), t(W_CONV), stride=(2, 3)).numpy())
case("conv_custom_dilated", {"x": X4},
     lambda x: mb.conv(x=x, weight=W_CONV, pad_type="custom", pad=[1, 2, 0, 3], dilations=[2, 1]),
     lambda x: F.conv2d(F.pad(t(x), (0, 3, 1, 2)), t(W_CONV), dilation=(2, 1)).numpy())
case("conv_same_strided", {"x": X4}, lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 2],
                                                       pad_type="same"),
     # out = ceil(in / 2); total pad = (out-1)*2 + 3 - in, the odd unit after: H 9 -> (1,1),
     # W 11 -> (1,1)
     lambda x: F.conv2d(F.pad(t(x), (1, 1, 1, 1)), t(W_CONV), stride=2).numpy())
case("conv_same_lower", {"x": randn(1, 6, 8, 8)},
     lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 2], pad_type="same_lower"),
     # total pad 1 per dim: same_lower puts it before
     lambda x: F.conv2d(F.pad(t(x), (1, 0, 1, 0)), t(W_CONV), stride=2).numpy())
case("conv_grouped", {"x": X4}, lambda x: mb.conv(x=x, weight=W_GROUP, groups=3, pad_type="same"),
     lambda x: F.conv2d(t(x), t(W_GROUP), padding=1, groups=3).numpy())
case("conv_depthwise", {"x": X4}, lambda x: mb.conv(x=x, weight=W_DW, groups=6, pad_type="same"),
     lambda x: F.conv2d(t(x), t(W_DW), padding=1, groups=6).numpy())
case("conv_depthwise_dilated_strided", {"x": X4},
     lambda x: mb.conv(x=x, weight=W_DW, groups=6, strides=[2, 2], dilations=[2, 2],
                       pad_type="custom", pad=[2, 2, 2, 2]),
     lambda x: F.conv2d(t(x), t(W_DW), stride=2, padding=2, dilation=2, groups=6).numpy())
case("conv_pointwise", {"x": X4}, lambda x: mb.conv(x=x, weight=W_CONV[:, :, :1, :1]),
     lambda x: F.conv2d(t(x), t(W_CONV[:, :, :1, :1])).numpy())
case("conv1d", {"x": X3}, lambda x: mb.conv(x=x, weight=W_1D, strides=[2], pad_type="custom",
                                            pad=[3, 3]),
     lambda x: F.conv1d(t(x), t(W_1D), stride=2, padding=3).numpy())
W_T = randn(6, 4, 3, 3, scale=0.3)
case("conv_transpose", {"x": X4},
     lambda x: mb.conv_transpose(x=x, weight=W_T, strides=[2, 2], pad_type="custom",
                                 pad=[1, 1, 1, 1]),
     lambda x: F.conv_transpose2d(t(x), t(W_T), stride=2, padding=1).numpy())
case("conv_transpose_grouped_output_shape", {"x": X4},
     lambda x: mb.conv_transpose(x=x, weight=W_T[:, :2], strides=[2, 2], groups=3,
                                 pad_type="custom", pad=[1, 1, 1, 1],
                                 output_shape=[2, 6, 18, 22]),
     lambda x: F.conv_transpose2d(t(x), t(W_T[:, :2]), stride=2, padding=1, output_padding=1,
                                  groups=3).numpy())

# pooling
for pad_type, torch_pad in [("valid", 0), ("custom", 1)]:
    kw = dict(pad=[1, 1, 1, 1]) if pad_type == "custom" else {}
    case("max_pool_" + pad_type, {"x": X4},
         lambda x, kw=kw, p=pad_type: mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2],
                                                  pad_type=p, **kw),
         lambda x, tp=torch_pad: F.max_pool2d(t(x), 3, 2, tp).numpy())
    for exclude in (False, True):
        case("avg_pool_{}_exclude{}".format(pad_type, exclude), {"x": X4},
             lambda x, kw=kw, p=pad_type, e=exclude: mb.avg_pool(
                 x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type=p,
                 exclude_padding_from_average=e, **kw),
             lambda x, tp=torch_pad, e=exclude: F.avg_pool2d(t(x), 3, 2, tp,
                                                             count_include_pad=not e).numpy())
case("max_pool_ceil", {"x": X4},
     lambda x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid",
                           ceil_mode=True),
     lambda x: F.max_pool2d(t(x), 2, 2, ceil_mode=True).numpy())
case("avg_pool_ceil", {"x": X4},
     lambda x: mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom",
                           pad=[1, 1, 1, 1], ceil_mode=True),
     lambda x: F.avg_pool2d(t(x), 3, 2, 1, ceil_mode=True).numpy())
case("max_pool_same", {"x": X4},
     lambda x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="same"),
     # in 9 -> out 5: pad (0, 1); 11 -> 6: (0, 1); padding never wins a max
     lambda x: F.max_pool2d(F.pad(t(x), (0, 1, 0, 1), value=-np.inf), 2, 2).numpy())
case("avg_pool_same", {"x": X4},
     lambda x: mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[1, 1], pad_type="same",
                           exclude_padding_from_average=True),
     lambda x: F.avg_pool2d(t(x), 3, 1, 1, count_include_pad=False).numpy())
case("max_pool_1d", {"x": X3},
     lambda x: mb.max_pool(x=x, kernel_sizes=[3], strides=[1], pad_type="custom", pad=[1, 1]),
     lambda x: F.max_pool1d(t(x), 3, 1, 1).numpy())
case("avg_pool_1d", {"x": X3},
     lambda x: mb.avg_pool(x=x, kernel_sizes=[3], strides=[1], pad_type="custom", pad=[1, 1]),
     lambda x: F.avg_pool1d(t(x), 3, 1, 1).numpy())
case("l2_pool", {"x": X4},
     lambda x: mb.l2_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
     lambda x: F.lp_pool2d(t(x), 2, 2, 2).numpy())


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)
