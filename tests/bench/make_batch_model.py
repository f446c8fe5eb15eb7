"""Write a small detector with a dynamic batch dimension (random weights, no download), for the
batching rows of `make bench`:

    python make_batch_model.py OUT.onnx

Input `images` uint8 [N, 300, 300, 3] (NHWC RGB, as the default model); output `detections`
float32 [N, 10, 6] in the `detections-xyxy` format (x1, y1, x2, y2 in input pixels, score,
class). Three strided convolutions carry the compute (≈ 0.1 GFLOP per image), so a model run
costs about what a small detector's does and batching has something to amortise; the boxes
are valid by construction (x1 < x2, y1 < y2, integer classes 0–79, scores 0–1).
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

K = 10


def main() -> None:
    rng = np.random.default_rng(7)
    inits = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    nodes = [
        helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["x0"], perm=[0, 3, 1, 2]),
    ]
    chans = [3, 32, 64, 64]
    for i in range(3):
        w = rng.normal(0, 0.05, (chans[i + 1], chans[i], 3, 3)).astype(np.float32)
        nodes.append(helper.make_node("Conv", [f"x{i}", const(f"w{i}", w)], [f"c{i}"], strides=[2, 2], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"x{i + 1}"]))
    nodes += [
        helper.make_node("GlobalAveragePool", ["x3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", const("wd", rng.normal(0, 0.1, (64, K * 6)).astype(np.float32))], ["d"]),
        helper.make_node("Sigmoid", ["d"], ["s"]),
        helper.make_node("Reshape", ["s", const("shape", np.array([-1, K, 6], np.int64))], ["u"]),
        # x1,y1 in [0,150), x2,y2 = 150 + [0,150), score in (0,1), class = floor(u * 80) in 0..79
        helper.make_node("Mul", ["u", const("scale", np.array([150, 150, 150, 150, 1, 79.99], np.float32))], ["m"]),
        helper.make_node("Add", ["m", const("offset", np.array([0, 0, 150, 150, 0, 0], np.float32))], ["a"]),
        helper.make_node("Floor", ["a"], ["fl"]),
        helper.make_node("Where", [const("is_class", np.array([False] * 5 + [True])), "fl", "a"], ["detections"]),
    ]
    graph = helper.make_graph(
        nodes,
        "labeljob-bench-batch",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", 300, 300, 3])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["N", K, 6])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="labeljob-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
