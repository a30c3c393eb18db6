#!/usr/bin/env python3
"""M2C's own reference generator for the SAM3 parity checks.

Builds a SAM3 detector (``transformers.Sam3Model``) and, for the tiny preset, the box-prompt
tracker head (``transformers.Sam3TrackerModel``) with seeded random weights, feeds them
deterministic synthetic inputs and records every stage that ``src/parity`` compares:

* ``inputs.safetensors``    test images (uint8), pixel values, token ids, box prompts, loss targets
* ``vision.safetensors``    patch embedding, pre-LayerNorm, ViT layers, backbone output, FPN levels
                            and their sine position encodings
* ``text.safetensors``      CLIP text encoder output and the projected per-token text features
* ``det_text.safetensors``  scenario A, text prompt: fusion encoder, decoder, scoring, mask head
* ``det_text_box.safetensors``  scenario B, text + box exemplars (adds the geometry encoder)
* ``tracker_box.safetensors``   scenario C (tiny only), tracker with box prompts, multimask and
                                single-mask output
* ``grad_text_features.safetensors``  scenario D, gradient of two losses w.r.t. the projected
                                      text features with the model frozen
* ``sam3_model.safetensors`` / ``sam3_tracker_model.safetensors``  the weights (HF names)
* ``sam3_config.json`` / ``sam3_tracker_config.json`` / ``manifest.json`` / ``README.md``

The weight recipe, seeds, inputs and tensor names are those of the shared SAM3 fixtures
(``shared/fixtures/sam3-tiny``), so the output of ``--preset tiny`` can be compared tensor by
tensor with them (``compare_fixtures.py``) and either folder serves the Rust parity code.

Usage (see README.md beside this file):

    python tests/reference/make_reference.py --preset tiny --out tests/fixtures/sam3-tiny
    python tests/reference/make_reference.py --preset full --out ~/.cache/m2c-full-ref

Everything runs on the CPU in float32 with the default (``sdpa``) attention. Runs are
deterministic for a given torch build, thread count and CPU (see README.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from torch import nn
from transformers import Sam3Config, Sam3Model, Sam3TrackerConfig, Sam3TrackerModel
from transformers.modeling_outputs import BaseModelOutputWithPooling


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------
@dataclass
class Preset:
    """Sizes of one reference model and its synthetic inputs."""

    name: str
    # (height, width) of each synthetic test image before preprocessing; the batch size is
    # the number of images.
    image_shapes: list
    # Index of every ViT layer whose output is stored (None: all of them). The Rust side checks
    # layer i from the stored output of layer i-1, so a checked layer needs its predecessor.
    vit_layers_stored: list | None = None
    # Scenario C (tracker) and its weights.
    with_tracker: bool = True
    # Re-run scenario B with eager attention and record the difference (a sanity check of the
    # reference itself; costs one more forward pass).
    eager_check: bool = True
    # Explicit config dicts; empty means the transformers defaults (the released model).
    detector: dict = field(default_factory=dict)
    tracker: dict = field(default_factory=dict)


def tiny_preset() -> Preset:
    """168 px, 12x12 tokens: every kind of layer of the released model, shrunk.

    Widths are all different (ViT 96, text 80, fusion 64) so that a transposed or mixed-up
    dimension fails loudly. Same values as `Sam3Config::tiny()` in src/model/config.rs.
    """
    size, patch = 168, 14
    grid = size // patch  # 12 tokens per side
    vision = {
        "model_type": "sam3_vision_model",
        "backbone_config": {
            "model_type": "sam3_vit_model",
            "hidden_size": 96,
            "intermediate_size": 192,
            "num_hidden_layers": 4,
            "num_attention_heads": 2,
            "image_size": size,
            "patch_size": patch,
            "pretrain_image_size": 56,  # 4x4 position table, tiled 3x3 like 24x24 -> 72x72
            "window_size": 4,  # 3x3 windows like 24 of 72
            "global_attn_indexes": [1, 3],
        },
        "fpn_hidden_size": 64,
        "backbone_feature_sizes": [[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
        "scale_factors": [4.0, 2.0, 1.0, 0.5],
    }
    vocab = 512
    text = {
        "model_type": "clip_text_model",
        "vocab_size": vocab,
        "hidden_size": 80,
        "intermediate_size": 160,
        "projection_dim": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "hidden_act": "gelu",
        "bos_token_id": vocab - 2,
        "eos_token_id": vocab - 1,
        "pad_token_id": 1,
    }
    fusion = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}
    detector = {
        "vision_config": vision,
        "text_config": text,
        "geometry_encoder_config": {"num_layers": 2, "roi_size": 7, **fusion},
        "detr_encoder_config": {"num_layers": 2, **fusion},
        "detr_decoder_config": {"num_layers": 2, "num_queries": 10, **fusion},
        "mask_decoder_config": {"hidden_size": 64, "num_attention_heads": 4, "num_upsampling_stages": 3},
    }
    tracker = {
        "vision_config": json.loads(json.dumps(vision)),  # an independent copy
        "prompt_encoder_config": {
            "hidden_size": 64,
            "image_size": size,
            "patch_size": patch,
            "mask_input_channels": 16,
        },
        "mask_decoder_config": {
            "hidden_size": 64,
            "mlp_dim": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "attention_downsample_rate": 2,
            "iou_head_hidden_dim": 64,
        },
    }
    return Preset(name="tiny", image_shapes=[[150, 200], [180, 140]], detector=detector, tracker=tracker)


def full_preset() -> Preset:
    """The released architecture (transformers' default `Sam3Config()`), one 1008x1008 image.

    Only a few ViT layers are stored (each is 21 MB): the first, the first global one (7), the
    windowed one after it and the last, each with its predecessor as input.
    """
    return Preset(
        name="full",
        image_shapes=[[1008, 1008]],
        vit_layers_stored=[0, 6, 7, 8, 30, 31],
        with_tracker=False,
        eager_check=False,
    )


PRESETS = {"tiny": tiny_preset, "full": full_preset}


# ---------------------------------------------------------------------------------------------
# Seeded weights
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def seeded_init(model: nn.Module, seed: int) -> None:
    """Overwrites every parameter and random buffer of `model` from one seeded generator.

    transformers' own init (std 0.02, LayerNorm 1/0, zero embeddings here and there) would
    leave many paths numerically invisible, so instead:

    * Linear / Conv2d / ConvTranspose2d weights ~ N(0, 1/fan_in) (variance preserving), where
      fan_in is in_features, in_channels*kh*kw/groups, and in_channels for the transposed conv;
      their biases ~ N(0, 0.1^2);
    * LayerNorm / GroupNorm weights ~ N(1, 0.2^2), biases ~ N(0, 0.2^2);
    * Embedding tables ~ N(0, 1);
    * every other parameter (ViT position table, free embeddings, ...) ~ N(0, 0.5^2);
    * buffers named `*positional_embedding` (random-Fourier tables of the tracker) ~ N(0, 1).

    The order of the random draws is part of the recipe (it fixes the values): modules in
    sorted order of their qualified names, weight before bias, then the remaining parameters
    and the buffers, each in sorted name order. Each tensor is one `torch.randn` call with its
    full shape.
    """
    gen = torch.Generator().manual_seed(seed)

    def draw(target: torch.Tensor, std: float, mean: float = 0.0) -> None:
        target.copy_(torch.randn(target.shape, generator=gen, dtype=torch.float32) * std + mean)

    covered: set[int] = set()
    for _, module in sorted(model.named_modules(), key=lambda item: item[0]):
        # ConvTranspose2d must be tested before Conv2d-like types; they are siblings in torch,
        # but the fan-in differs (weight layout is (in, out, kh, kw) and stride == kernel here).
        if isinstance(module, nn.Linear):
            draw(module.weight, 1.0 / math.sqrt(module.in_features))
        elif isinstance(module, nn.ConvTranspose2d):
            draw(module.weight, 1.0 / math.sqrt(module.in_channels))
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            draw(module.weight, 1.0 / math.sqrt(module.in_channels * kh * kw // module.groups))
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            if module.weight is not None:
                draw(module.weight, 0.2, mean=1.0)
        elif isinstance(module, nn.Embedding):
            draw(module.weight, 1.0)
        else:
            continue
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor):
            draw(bias, 0.2 if isinstance(module, (nn.LayerNorm, nn.GroupNorm)) else 0.1)
        covered.update(id(p) for p in module.parameters(recurse=False))

    for _, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        if id(param) not in covered:
            draw(param, 0.5)
    for name, buf in sorted(model.named_buffers(), key=lambda item: item[0]):
        if name.endswith("positional_embedding"):
            draw(buf, 1.0)


# ---------------------------------------------------------------------------------------------
# Synthetic inputs
# ---------------------------------------------------------------------------------------------
def test_card(height: int, width: int, seed: int) -> np.ndarray:
    """A uint8 HxWx3 test image: colour ramps, three flat discs, blue stripes, light noise.

    Smooth regions make resize errors small and structured; the discs and stripes give edges.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / (width - 1), yy / (height - 1)  # 0..1 across, 0..1 down
    rgb = np.stack([u, v, 0.5 + 0.5 * np.sin(6.0 * u + 4.0 * v + seed)], axis=-1)
    for _ in range(3):
        cy = rng.uniform(0.2, 0.8) * height
        cx = rng.uniform(0.2, 0.8) * width
        radius = rng.uniform(0.1, 0.25) * min(height, width)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius * radius
        rgb[inside] = rng.uniform(0, 1, size=3)
    stripes = (xx.astype(int) // 7) % 5 == 0  # one column in five blocks of 7 px
    rgb[stripes, 2] *= 0.3
    rgb = rgb + rng.normal(0, 0.02, size=rgb.shape)
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def make_inputs(preset: Preset, cfg: Sam3Config, seed: int) -> "OrderedDict[str, torch.Tensor]":
    """Images, pixel values, token ids, box prompts and the loss targets of scenario D."""
    from transformers import Sam3ImageProcessor

    vit = cfg.vision_config.backbone_config
    size, patch = vit.image_size, vit.patch_size
    batch = len(preset.image_shapes)
    text_len = cfg.text_config.max_position_embeddings
    images = [test_card(h, w, seed + i) for i, (h, w) in enumerate(preset.image_shapes)]
    processor = Sam3ImageProcessor(size={"height": size, "width": size})
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"].float()

    # Token ids laid out as the CLIP tokenizer does: [start, words..., end, end...]. SAM3 pads
    # with the end token; the attention mask marks start..end. Prompt b has 3 + 5b words.
    bos, eos = cfg.text_config.bos_token_id, cfg.text_config.eos_token_id
    gen = torch.Generator().manual_seed(seed + 100)
    input_ids = torch.full((batch, text_len), eos, dtype=torch.long)
    attention_mask = torch.zeros((batch, text_len), dtype=torch.long)
    for b in range(batch):
        words = min(3 + (5 * b) % max(1, text_len - 4), text_len - 2)
        input_ids[b, 0] = bos
        input_ids[b, 1 : words + 1] = torch.randint(2, bos, (words,), generator=gen)
        input_ids[b, words + 1] = eos
        attention_mask[b, : words + 2] = 1

    # Detector exemplar boxes, normalised (cx, cy, w, h). Image 0: a positive and a negative
    # box; image 1: a positive box and a padding slot (label -10 is ignored).
    input_boxes = torch.tensor(
        [
            [[0.45, 0.40, 0.30, 0.35], [0.70, 0.75, 0.20, 0.15]],
            [[0.35, 0.55, 0.40, 0.30], [0.00, 0.00, 0.00, 0.00]],
        ],
        dtype=torch.float32,
    )[:batch]
    input_boxes_labels = torch.tensor([[1, 0], [1, -10]], dtype=torch.long)[:batch]

    # Tracker boxes: absolute (x1, y1, x2, y2) in model-input pixels, drawn for 168 px and
    # scaled; two boxes per image, each gives its own masks.
    tracker_input_boxes = torch.tensor(
        [
            [[30, 40, 120, 150], [90, 10, 160, 70]],
            [[10, 20, 90, 70], [50, 60, 140, 160]],
        ],
        dtype=torch.float32,
    )[:batch] * (size / 168.0)

    # Scenario D targets: one disc per (image, query) on the 4x mask grid; every third query
    # is a positive for the classification term.
    queries = cfg.detr_decoder_config.num_queries
    side = 4 * (size // patch)
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    mask_target = torch.zeros(batch, queries, side, side)
    for b in range(batch):
        for q in range(queries):
            cy = side * (0.2 + 0.6 * ((7 * q + 3 * b) % 11) / 10)
            cx = side * (0.2 + 0.6 * ((5 * q + 2 * b) % 13) / 12)
            radius = side * (0.1 + 0.05 * (q % 3))
            mask_target[b, q] = ((yy - cy) ** 2 + (xx - cx) ** 2 < radius * radius).float()
    logits_target = torch.zeros(batch, queries)
    logits_target[:, ::3] = 1.0

    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for i, image in enumerate(images):
        out[f"image_{i}_uint8"] = torch.from_numpy(image)
    out.update(
        pixel_values=pixel_values,
        input_ids=input_ids,
        attention_mask=attention_mask,
        input_boxes=input_boxes,
        input_boxes_labels=input_boxes_labels,
        tracker_input_boxes=tracker_input_boxes,
        mask_target=mask_target,
        logits_target=logits_target,
    )
    return out


# ---------------------------------------------------------------------------------------------
# Capturing intermediate tensors
# ---------------------------------------------------------------------------------------------
class Taps:
    """Forward hooks that copy selected module outputs into a dict under fixture names.

    `tap(module, pick)` registers a hook; `pick(output)` returns {name: tensor}. A context
    manager, so the hooks never outlive one forward pass.
    """

    def __init__(self) -> None:
        self.tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self._handles: list = []

    def tap(self, module: nn.Module, pick) -> None:
        def hook(_module, _args, output):
            for name, value in pick(output).items():
                if value is not None:
                    self.tensors[name] = value.detach().clone()

        self._handles.append(module.register_forward_hook(hook))

    def __enter__(self) -> "Taps":
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def tap_vision(taps: Taps, model: Sam3Model, layers: list | None) -> None:
    """ViT stages and the FPN neck (with its sine position encodings, batch element 0)."""
    vit = model.vision_encoder.backbone
    taps.tap(vit.embeddings, lambda o: {"vision.embeddings": o})
    taps.tap(vit.layer_norm, lambda o: {"vision.pre_layernorm": o})
    for i, layer in enumerate(vit.layers):
        if layers is None or i in layers:
            taps.tap(layer, lambda o, i=i: {f"vision.layer{i}": o})
    taps.tap(vit, lambda o: {"vision.backbone_output": o.last_hidden_state})

    def neck(output):
        levels, encodings = output
        named = {f"vision.fpn{i}": t for i, t in enumerate(levels)}
        named.update({f"vision.fpn_pos{i}": t[:1] for i, t in enumerate(encodings)})
        return named

    taps.tap(model.vision_encoder.neck, neck)


def tap_text(taps: Taps, model: Sam3Model) -> None:
    taps.tap(model.text_encoder, lambda o: {"text.encoder_last_hidden_state": o.last_hidden_state})
    taps.tap(model.text_projection, lambda o: {"text.features": o})


def tap_detector(taps: Taps, model: Sam3Model, geometry: bool, pixel_decoder: bool) -> None:
    """Geometry encoder (box prompts), fusion encoder, decoder, scoring and mask head."""
    if geometry:
        taps.tap(
            model.geometry_encoder,
            lambda o: {"geometry.features": o.last_hidden_state, "geometry.mask": o.attention_mask},
        )
    for i, layer in enumerate(model.detr_encoder.layers):
        taps.tap(layer, lambda o, i=i: {f"encoder.layer{i}": o})
    taps.tap(
        model.detr_encoder,
        lambda o: {"encoder.output": o.last_hidden_state, "encoder.prompt_features": o.text_features},
    )
    for i, layer in enumerate(model.detr_decoder.layers):
        taps.tap(layer, lambda o, i=i: {f"decoder.layer{i}": o})
    taps.tap(
        model.detr_decoder,
        lambda o: {
            "decoder.intermediate_hidden_states": o.intermediate_hidden_states,
            "decoder.reference_boxes": o.reference_boxes,
            "decoder.presence_logits_all": o.presence_logits,
        },
    )
    taps.tap(model.dot_product_scoring, lambda o: {"scoring.all_pred_logits": o.squeeze(-1)})
    heads = model.mask_decoder
    taps.tap(heads.prompt_cross_attn, lambda o: {"mask_decoder.prompt_cross_attn_out": o[0]})
    if pixel_decoder:
        taps.tap(heads.pixel_decoder, lambda o: {"mask_decoder.pixel_embed": o})
        taps.tap(heads.instance_projection, lambda o: {"mask_decoder.instance_embeds": o})
    taps.tap(heads.mask_embedder, lambda o: {"mask_decoder.mask_embeddings": o})


def final_outputs(out) -> "OrderedDict[str, torch.Tensor]":
    names = ("pred_logits", "pred_boxes", "presence_logits", "pred_masks", "semantic_seg")
    return OrderedDict((f"out.{n}", getattr(out, n)) for n in names)


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------
def run_scenarios(preset: Preset, cfg: Sam3Config, model: Sam3Model, tracker, inputs: dict, notes: dict, log):
    """Runs scenarios A-D and returns {file name: {tensor name: tensor}}; findings go to `notes`."""
    pixels, ids, mask = inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"]
    files: "OrderedDict[str, OrderedDict]" = OrderedDict()
    files["inputs.safetensors"] = OrderedDict(inputs)

    # A: text prompt, with the vision and text stages.
    with Taps() as taps:
        tap_vision(taps, model, preset.vit_layers_stored)
        tap_text(taps, model)
        tap_detector(taps, model, geometry=False, pixel_decoder=True)
        out_a = model(pixel_values=pixels, input_ids=ids, attention_mask=mask)
    recorded = taps.tensors
    files["vision.safetensors"] = OrderedDict((k, v) for k, v in recorded.items() if k.startswith("vision."))
    files["text.safetensors"] = OrderedDict((k, v) for k, v in recorded.items() if k.startswith("text."))
    det_a = OrderedDict((k, v) for k, v in recorded.items() if not k.startswith(("vision.", "text.")))
    det_a.update(final_outputs(out_a))
    files["det_text.safetensors"] = det_a
    log("scenario A (text prompt) done")

    # B: text + box exemplars (geometry encoder); vision and text as in A.
    with Taps() as taps:
        tap_detector(taps, model, geometry=True, pixel_decoder=False)
        out_b = model(
            pixel_values=pixels,
            input_ids=ids,
            attention_mask=mask,
            input_boxes=inputs["input_boxes"],
            input_boxes_labels=inputs["input_boxes_labels"],
        )
    det_b = OrderedDict(taps.tensors)
    det_b.update(final_outputs(out_b))
    files["det_text_box.safetensors"] = det_b
    log("scenario B (text + boxes) done")
    if preset.eager_check:
        notes["eager_vs_sdpa_max_abs_diff"] = eager_check(cfg, model, inputs, out_b)
        log("eager attention cross-check done")

    # C: the tracker head with box prompts (its own neck on the shared backbone).
    if tracker is not None:
        files["tracker_box.safetensors"] = run_tracker(tracker, inputs)
        log("scenario C (tracker boxes) done")

    # D: gradient w.r.t. the projected text features, model frozen, vision features cached.
    # Reuses scenario A's vision features through get_vision_features.
    files["grad_text_features.safetensors"] = run_gradient(model, files["text.safetensors"], inputs, out_a)
    log("scenario D (gradient) done")
    return files


def run_tracker(tracker, inputs: dict) -> "OrderedDict[str, torch.Tensor]":
    boxes = inputs["tracker_input_boxes"]
    with Taps() as taps:
        taps.tap(tracker.vision_encoder.neck, lambda o: {f"tracker.fpn{i}": t for i, t in enumerate(o[0])})
        taps.tap(
            tracker.prompt_encoder,
            lambda o: {"tracker.sparse_embeddings": o[0], "tracker.dense_embeddings": o[1]},
        )
        taps.tap(
            tracker.mask_decoder.transformer,
            lambda o: {"tracker.transformer_queries": o[0], "tracker.transformer_keys": o[1]},
        )
        multi = tracker(pixel_values=inputs["pixel_values"], input_boxes=boxes, multimask_output=True)
    out = OrderedDict(taps.tensors)
    for i, embedding in enumerate(multi.image_embeddings):
        out[f"tracker.image_embeddings{i}"] = embedding
    out["tracker.image_positional_embeddings"] = tracker.get_image_wide_positional_embeddings()
    for prefix, result in (("multimask", multi), ("single", None)):
        if result is None:
            # Single-mask output from the cached image embeddings of the first pass.
            cached = [e.clone() for e in multi.image_embeddings]
            result = tracker(image_embeddings=cached, input_boxes=boxes, multimask_output=False)
        out[f"tracker.{prefix}.pred_masks"] = result.pred_masks
        out[f"tracker.{prefix}.iou_scores"] = result.iou_scores
        out[f"tracker.{prefix}.object_score_logits"] = result.object_score_logits
    return out


def run_gradient(model: Sam3Model, text: dict, inputs: dict, out_a) -> "OrderedDict[str, torch.Tensor]":
    """d loss / d text features for loss_mask = mean BCE(masks) and loss_total (+ logits, presence)."""
    mask = inputs["attention_mask"]
    vision = model.get_vision_features(pixel_values=inputs["pixel_values"])
    features = text["text.features"].detach().clone()
    out = OrderedDict()
    out["grad.text_features"] = features.clone()
    with torch.enable_grad():
        for loss_name in ("loss_mask", "loss_total"):
            leaf = features.clone().requires_grad_(True)
            result = model(
                vision_embeds=vision,
                text_embeds=BaseModelOutputWithPooling(pooler_output=leaf),
                attention_mask=mask,
            )
            loss = F.binary_cross_entropy_with_logits(result.pred_masks, inputs["mask_target"])
            if loss_name == "loss_total":
                loss = loss + F.binary_cross_entropy_with_logits(result.pred_logits, inputs["logits_target"])
                presence = result.presence_logits
                loss = loss + F.binary_cross_entropy_with_logits(presence, torch.ones_like(presence))
            else:
                # The cached-features path must reproduce scenario A exactly enough.
                torch.testing.assert_close(result.pred_masks.detach(), out_a.pred_masks, rtol=1e-5, atol=1e-5)
            (grad,) = torch.autograd.grad(loss, leaf)
            out[f"grad.{loss_name}"] = loss.detach().reshape(())
            out[f"grad.d_{loss_name}_d_text_features"] = grad
    padded = mask == 0  # rows of padded tokens
    if padded.any():
        assert out["grad.d_loss_mask_d_text_features"][padded].abs().max() == 0, "padded rows must get no gradient"
    return out


def eager_check(cfg: Sam3Config, model: Sam3Model, inputs: dict, out_b) -> dict:
    """Max abs difference of scenario B's outputs between sdpa (used) and eager attention.

    Built from a copy of the config: switching the attention implementation marks the config
    object, which must not leak into sam3_config.json.
    """
    eager = Sam3Model(copy.deepcopy(cfg)).eval()
    eager.load_state_dict(model.state_dict())
    eager.set_attn_implementation("eager")
    out = eager(
        pixel_values=inputs["pixel_values"],
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        input_boxes=inputs["input_boxes"],
        input_boxes_labels=inputs["input_boxes_labels"],
    )
    return {k: float((getattr(out, k.removeprefix("out.")) - v).abs().max()) for k, v in final_outputs(out_b).items()}


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def stats(t: torch.Tensor) -> dict:
    if not t.is_floating_point():
        return {}
    d = t.double()
    return {
        "mean": float(d.mean()),
        "std": float(d.std()) if d.numel() > 1 else 0.0,
        "absmax": float(d.abs().max()),
    }


def versions() -> dict:
    import safetensors
    import torchvision

    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def write_folder(out_dir: str, preset: Preset, seed: int, cfg, trk_cfg, model, tracker, files, notes) -> None:
    os.makedirs(out_dir, exist_ok=True)
    meta = {"generator": "tests/reference/make_reference.py", "preset": preset.name, "seed": str(seed)}

    def contiguous(tensors):
        return OrderedDict((k, v.detach().contiguous()) for k, v in tensors.items())

    save_file(contiguous(model.state_dict()), os.path.join(out_dir, "sam3_model.safetensors"),
              metadata={**meta, "class": "Sam3Model"})
    with open(os.path.join(out_dir, "sam3_config.json"), "w") as f:
        json.dump(cfg.to_dict(), f, indent=1, default=str)
    if tracker is not None:
        # The tracker's ViT is the detector's (as in the released checkpoint): stored once, in
        # sam3_model.safetensors under the same names.
        own = OrderedDict((k, v) for k, v in tracker.state_dict().items() if not k.startswith("vision_encoder.backbone."))
        save_file(contiguous(own), os.path.join(out_dir, "sam3_tracker_model.safetensors"),
                  metadata={**meta, "class": "Sam3TrackerModel", "shared": "vision_encoder.backbone.* is in sam3_model.safetensors"})
        with open(os.path.join(out_dir, "sam3_tracker_config.json"), "w") as f:
            json.dump(trk_cfg.to_dict(), f, indent=1, default=str)

    manifest = {
        "generator": meta["generator"],
        "preset": preset.name,
        "preset_values": asdict(preset),
        "seed": seed,
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "attn_implementation": "sdpa",
        "n_params": {"Sam3Model": sum(p.numel() for p in model.parameters())},
        **notes,
        "files": {},
    }
    if tracker is not None:
        manifest["n_params"]["Sam3TrackerModel"] = sum(p.numel() for p in tracker.parameters())
    for fname, tensors in files.items():
        tensors = contiguous(tensors)
        save_file(tensors, os.path.join(out_dir, fname), metadata=meta)
        manifest["files"][fname] = {
            k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch."), **stats(v)}
            for k, v in tensors.items()
        }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    write_readme(out_dir, manifest)


def write_readme(out_dir: str, manifest: dict) -> None:
    """A short README for the fixture folder: what made it and which tensors it holds."""
    lines = [
        f"# SAM3 reference fixtures, preset `{manifest['preset']}`",
        "",
        "Made by `tests/reference/make_reference.py --preset "
        f"{manifest['preset']} --seed {manifest['seed']}` (see `tests/reference/README.md`): "
        "transformers' `Sam3Model` (and `Sam3TrackerModel`) with seeded random weights, float32, CPU, "
        "sdpa attention. Do not edit by hand; regenerate.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()) + ".",
        "",
        "Parameters: " + ", ".join(f"{k} {v:,}" for k, v in manifest["n_params"].items()) + ".",
        "",
        "Every tensor with its shape and dtype (statistics in `manifest.json`):",
        "",
    ]
    for fname, tensors in manifest["files"].items():
        lines.append(f"- `{fname}`: " + ", ".join(f"`{k}` {v['shape']}" for k, v in tensors.items()))
    lines.append("")
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def build(preset: Preset, seed: int):
    """Configs and seeded models. The draw order (detector, then tracker) is part of the recipe."""
    cfg = Sam3Config(**preset.detector)
    torch.manual_seed(seed)
    model = Sam3Model(cfg).eval()
    seeded_init(model, seed + 1)
    tracker, trk_cfg = None, None
    if preset.with_tracker:
        trk_cfg = Sam3TrackerConfig(**preset.tracker)
        tracker = Sam3TrackerModel(trk_cfg).eval()
        seeded_init(tracker, seed + 2)
        # Shared backbone, as in the released checkpoint.
        tracker.vision_encoder.backbone.load_state_dict(model.vision_encoder.backbone.state_dict())
    for module in (model, tracker):
        if module is not None:
            module.requires_grad_(False)
    return cfg, trk_cfg, model, tracker


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    start = time.monotonic()
    timing: dict = {}

    def log(what: str) -> None:
        timing[what] = round(time.monotonic() - start, 1)
        rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"[{timing[what]:7.1f} s, peak RSS {rss_gib:.1f} GiB] {what}", flush=True)

    preset = PRESETS[args.preset]()
    cfg, trk_cfg, model, tracker = build(preset, args.seed)
    log("models built and initialised")
    inputs = make_inputs(preset, cfg, args.seed)
    notes: dict = {}  # goes into manifest.json (timings are printed only: they vary)
    files = run_scenarios(preset, cfg, model, tracker, inputs, notes, log)
    write_folder(args.out, preset, args.seed, cfg, trk_cfg, model, tracker, files, notes)
    log(f"written to {args.out}")
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(json.dumps({"out": args.out, "bytes": total,
                      "loss_mask": float(files["grad_text_features.safetensors"]["grad.loss_mask"]),
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))


if __name__ == "__main__":
    main()
