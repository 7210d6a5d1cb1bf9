"""Read constants out of an ML Program's weight.bin (MIL blob storage, version 2).

Layout, as written by coremltools' blob writer (every record 64-byte aligned):
    file header (64 bytes):   uint32 count, uint32 version (= 2), 7 x uint64 reserved
    per blob, a metadata record (64 bytes):
        uint32 sentinel (0xDEADBEEF), uint32 data type, uint64 size in bytes,
        uint64 offset of the data in the file, then reserved words
    followed (at that offset) by the raw little-endian data.
A BlobFileValue's ``offset`` points at the metadata record, not at the data.
"""
from __future__ import annotations

import os
import struct

import numpy as np

from coreml_reference.errors import ModelFileError, UnsupportedError

SENTINEL = 0xDEADBEEF
HEADER = struct.Struct("<II")           # count, version
METADATA = struct.Struct("<IIQQ")       # sentinel, data type, size, data offset
RECORD_BYTES = 64

# Blob data type code -> numpy dtype (byte-sized types only).
BLOB_DTYPES = {
    1: np.dtype("<f2"), 2: np.dtype("<f4"), 3: np.dtype("u1"), 4: np.dtype("i1"),
    6: np.dtype("<i2"), 7: np.dtype("<u2"), 14: np.dtype("<i4"), 15: np.dtype("<u4"),
}
# Packed sub-byte types: code -> (bits, signed). Elements are packed from the lowest bit.
SUBBYTE = {8: (4, True), 9: (1, False), 10: (2, False), 11: (4, False), 12: (3, False),
           13: (6, False)}
BLOB_TYPE_NAMES = {5: "bfloat16", 16: "float8e4m3fn", 17: "float8e5m2"}


class BlobFile:
    """One weight file, read blob by blob: each blob is copied out of the file when it is
    decoded, so that a float16 program, widened to float32 constants as it is compiled, never
    holds the whole file besides them (its peak memory: the widened weights plus one blob).
    Copies, not a mapping: nothing breaks if the file is replaced while a compiled program
    still holds its constants."""

    def __init__(self, path):
        self.path = path
        try:
            self.size = os.path.getsize(path)
            header = self._bytes(0, RECORD_BYTES)
        except OSError as e:
            raise ModelFileError("cannot read weight file {}: {}".format(path, e))
        if len(header) < RECORD_BYTES:
            raise ModelFileError("weight file {} is truncated: {} bytes, shorter than its "
                                 "64-byte header".format(path, self.size))
        count, version = HEADER.unpack_from(header, 0)
        if version != 2:
            raise ModelFileError("weight file {}: blob storage version {} (expected 2); "
                                 "corrupt or not a MIL weight file".format(path, version))
        self.count = count

    def _bytes(self, offset, nbytes):
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(nbytes)

    def _array(self, offset, nbytes):
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = np.fromfile(f, dtype=np.uint8, count=nbytes)
        if data.size != nbytes:                    # the file changed since it was opened
            raise ModelFileError("weight file {} is truncated: {} bytes at offset {} expected, "
                                 "{} read".format(self.path, nbytes, offset, data.size))
        return data

    def read(self, offset, expected_type=None):
        """The blob whose metadata record starts at ``offset``, as a flat numpy array."""
        size = self.size
        if offset < RECORD_BYTES or offset + METADATA.size > size:
            raise ModelFileError("weight file {} is truncated or corrupt: blob metadata at "
                                 "offset {} lies outside the {}-byte file".format(
                                     self.path, offset, size))
        try:
            record = self._bytes(offset, METADATA.size)
        except OSError as e:
            raise ModelFileError("cannot read weight file {}: {}".format(self.path, e))
        sentinel, dtype_code, nbytes, data_offset = METADATA.unpack_from(record, 0)
        if sentinel != SENTINEL:
            raise ModelFileError("weight file {} is corrupt: no blob at offset {} (sentinel "
                                 "{:#x}, expected {:#x})".format(self.path, offset, sentinel,
                                                                SENTINEL))
        if data_offset + nbytes > size:
            raise ModelFileError("weight file {} is truncated: blob at offset {} needs bytes "
                                 "{}..{}, file has {}".format(self.path, offset, data_offset,
                                                               data_offset + nbytes, size))
        if dtype_code in BLOB_DTYPES:
            dtype = BLOB_DTYPES[dtype_code]
            if nbytes % dtype.itemsize:
                raise ModelFileError("weight file {} is corrupt: blob at offset {} has {} bytes, "
                                     "not a multiple of its {}-byte elements".format(
                                         self.path, offset, nbytes, dtype.itemsize))
            return self._array(data_offset, nbytes).view(dtype)
        if dtype_code in SUBBYTE:
            return ("subbyte", SUBBYTE[dtype_code], self._array(data_offset, nbytes))
        raise UnsupportedError("blob data", BLOB_TYPE_NAMES.get(dtype_code, str(dtype_code)),
                               "offset {}".format(offset), self.path)


def unpack_subbyte(packed, bits, signed, count):
    """Unpack ``count`` little-endian-bit-order integers of ``bits`` bits each."""
    as_bits = np.unpackbits(packed, bitorder="little")[:count * bits]
    if as_bits.size < count * bits:
        raise ModelFileError("packed blob holds {} bits, {} values of {} bits expected".format(
            as_bits.size, count, bits))
    values = as_bits.reshape(count, bits).astype(np.int32) << np.arange(bits, dtype=np.int32)
    values = values.sum(axis=1)
    if signed:
        values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    return values.astype(np.int8 if signed else np.uint8)
