"""backends/shapes.py: how a Core ML multiArrayType's declared shape reads in the record."""
import pytest

from backends.shapes import array_type_text
from coreml_reference import proto


def array_type(shape=(), ranges=None, enumerated=None):
    declared = proto.module("FeatureTypes_pb2").ArrayFeatureType()
    declared.shape.extend(shape)
    for lower, upper in ranges or []:
        size = declared.shapeRange.sizeRanges.add()
        size.lowerBound, size.upperBound = lower, upper
    for each in enumerated or []:
        declared.enumeratedShapes.shapes.add().shape.extend(each)
    return declared


@pytest.mark.parametrize("declared,text", [
    (dict(shape=[1, 1024]), "fixed 1x1024"),
    (dict(shape=[1, 8, 1024], ranges=[(1, 1), (1, 16), (1024, 1024)]), "range 1 x 1..16 x 1024"),
    (dict(shape=[1, 8], ranges=[(1, 1), (1, -1)]), "range 1 x 1..inf"),
    (dict(enumerated=[[2, 4], [2, 5], [3, 4], [3, 5]]), "enumerated {2,3} x {4,5}"),
    (dict(enumerated=[[1, 3], [2, 5]]), "enumerated 1x3 | 2x5"),
    (dict(enumerated=[[1, 3], [1, 3]]), "fixed 1x3"),
])
def test_array_type_text(declared, text):
    assert array_type_text(array_type(**declared)) == text
