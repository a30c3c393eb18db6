#!/usr/bin/env python3
"""Seed inputs for the file-reader fuzz targets (safetensors_header, concept_file, project_journal,
project_snapshot, settings_file, tokenizer_file), written to corpus/<target>/seed-*. Run from this
folder; only the standard library and the committed tiny fixtures are used."""
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "sam3-tiny")


def put(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors):
    header, offset, data = {}, 0, b""
    for name, shape in tensors:
        n = 4
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
        data += b"\0" * n
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


# safetensors_header
put("safetensors_header", "sam3", safetensors([("detector_model.vision_encoder.a", [2]),
                                                ("tracker_model.b", [1, 2])]))
put("safetensors_header", "sam2", safetensors([("image_encoder.trunk.pos_embed", [1]),
                                               ("sam_mask_decoder.iou_token.weight", [2])]))
with open(os.path.join(FIXTURES, "sam3_model.safetensors"), "rb") as f:
    tiny = f.read()
(hlen,) = struct.unpack("<Q", tiny[:8])
config = open(os.path.join(FIXTURES, "sam3_config.json"), "rb").read()
put("safetensors_header", "tiny-header-cut", tiny[: 8 + hlen + 64])
put("safetensors_header", "tiny-header-config", tiny[: 8 + hlen + 64] + b"\n--config--\n" + config)
put("safetensors_header", "mp4", b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41" + b"\x01" * 64)
put("safetensors_header", "lfs", "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n")

# concept_file
concept = {"format_version": 1, "name": "lesion", "base_text": "a lesion", "site": "text_input",
           "shape": [2, 3], "phi": [0.0, 0.5, -1.25, 3.0, 1e-7, 2.0],
           "checkpoint": "sha256:abcd", "training_masks": ["00ff"],
           "settings": {"steps": 60, "lr_start": 5e-4, "lr_end": 5e-6, "weight_decay": 0.0,
                        "grad_clip": 1.0, "seed": 123, "resize_augment": True},
           "final_loss": 0.25}
put("concept_file", "valid", json.dumps(concept))
put("concept_file", "projected", json.dumps(dict(concept, site="projected_text", final_loss=None)))

# settings_file
put("settings_file", "full", json.dumps({"weights": "/data/sam3/model.safetensors", "device": "gpu",
                                         "precision": "f16"}))
put("settings_file", "partial", '{"precision": "f32", "future": [1, 2]}')

# tokenizer_file
vocab = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}
vocab.update({c + "</w>": 26 + i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")})
vocab.update({"po": 60, "po</w>": 61, "<|startoftext|>": 510, "<|endoftext|>": 511})
put("tokenizer_file", "json", json.dumps({"model": {"vocab": vocab, "merges": ["p o", ["p", "o</w>"]]}}))
put("tokenizer_file", "vocab-merges", json.dumps(vocab) + "\n--merges--\n#version: 0.2\np o\np o</w>\n")

# project_journal: payloads (mode byte 0) and whole files (mode byte 1)
def payload(ops, blobs=b""):
    raw = json.dumps(ops).encode()
    return struct.pack("<I", len(raw)) + raw + blobs


tile = zlib.compressobj(1, zlib.DEFLATED, -15)
blob = tile.compress(bytes([1, 0] * 32 * 64)) + tile.flush()
payloads = [
    payload([{"op": "add_item", "key": "c", "width": 40, "height": 30}]),
    payload([{"op": "tiles", "item": 0, "class": 1,
              "tiles": [{"index": 0, "offset": 0, "len": len(blob)}, {"index": 1, "uniform": 1}]}],
            blob),
    payload([{"op": "hue", "item": 1, "hue": 0.5}, {"op": "state", "item": 0, "state": "accepted"}]),
    payload([{"op": "class", "value": 2, "class": {"value": 2, "name": "cyst", "colour": [1, 2, 3]}},
             {"op": "provenance", "item": 0, "class": 1, "value": None}]),
]
put("project_journal", "payloads", b"\0" + b"\n--rec--\n".join(payloads))
journal = b"M2CJRNL1" + struct.pack("<Q", 1)
for p in payloads:
    journal += struct.pack("<II", len(p), zlib.crc32(p)) + p
put("project_journal", "file", b"\x01" + journal)
put("project_journal", "torn", b"\x01" + journal[:-7])

# project_snapshot: the fuzz template's snapshot (two items, class 1, one mask file)
snapshot = {"format": 1, "generation": 1, "journal": {"generation": 0, "offset": 16},
            "classes": [{"value": 1, "name": "lesion", "colour": [255, 0, 0]}],
            "items": [{"key": "a", "width": 70, "height": 65, "state": "corrected", "hue": 0.5,
                       "masks": [{"class": 1, "file": "masks/000000/c1-g1.png"}]},
                      {"key": "b", "width": 3, "height": 2}]}
put("project_snapshot", "valid", json.dumps(snapshot))


def png(width, height, rows):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


mask = png(70, 65, [[255 if 20 <= x < 40 and 10 <= y < 30 else 0 for x in range(70)] for y in range(65)])
put("project_snapshot", "with-mask", json.dumps(snapshot) + "\n--mask--\n" + "")
with open(os.path.join(HERE, "corpus", "project_snapshot", "seed-with-mask"), "ab") as f:
    f.write(mask)
