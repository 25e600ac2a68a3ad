"""Style LoRA checks (templates_app/lora_files.py) on real files: safetensors written by the `safetensors`
library (and one trained-shape LoRA made with peft on the tiny model), and broken ones of every kind. Each bad
file gets its own message."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from typing import Any

import numpy as np
import pytest

from engine.checkpoints import BaseModelSpec
from templates_app.lora_files import LoraRejected, TargetModel, check_style_lora, target_for
from tests.templates_app.conftest import lora_bytes, lora_tensors, raw_safetensors

SD15 = TargetModel(name="sd15-photo", family="sd15", cross_attention_dim=768, label="SD 1.5 photo")
SDXL = TargetModel(name="sdxl-photo", family="sdxl", cross_attention_dim=2048, label="SDXL photo")


def check(data: bytes, target: TargetModel = SD15, **kwargs: Any) -> Any:
    return check_style_lora(io.BytesIO(data), target=target, **kwargs)


def rejected(data: bytes, target: TargetModel = SD15, **kwargs: Any) -> LoraRejected:
    with pytest.raises(LoraRejected) as caught:
        check(data, target, **kwargs)
    return caught.value


# --- good files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["diffusers", "kohya"])
def test_an_sd15_lora_passes_with_its_facts(style: str):
    data = lora_bytes(family="sd15", rank=8, style=style)
    info = check(data, filename="film.safetensors")
    assert info.family == "sd15"
    assert info.rank == 8
    assert info.tensors == len(lora_tensors(family="sd15", style=style))
    assert info.size == len(data)
    assert info.cross_attention_dim == 768
    import hashlib

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert "unet" in info.components and "text_encoder" in info.components
    assert info.metadata == {"format": "pt"}


@pytest.mark.parametrize("style", ["diffusers", "kohya"])
def test_an_sdxl_lora_passes_for_an_sdxl_model(style: str):
    info = check(lora_bytes(family="sdxl", style=style), SDXL)
    assert (info.family, info.cross_attention_dim) == ("sdxl", 2048)
    assert "text_encoder_2" in info.components


def test_the_name_of_the_file_does_not_matter_for_a_good_file():
    assert check(lora_bytes(), filename="style.lora").family == "sd15"


def test_old_style_diffusers_attention_processor_keys_pass():
    tensors = {
        f"down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.{part}.weight": array
        for part, array in (("down", np.zeros((4, 768), np.float16)), ("up", np.zeros((320, 4), np.float16)))
    }
    assert check(lora_bytes(tensors)).rank == 4


def test_the_cross_attention_width_comes_from_the_models_unet_config(tmp_path):
    folder = tmp_path / "my-sd15"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 96}))
    local = target_for(BaseModelSpec(name="custom", family="sd15", source=str(folder)))
    assert local.cross_attention_dim == 96
    assert check(lora_bytes(family="sd15", width=96), local).cross_attention_dim == 96
    hub = target_for(BaseModelSpec(name="hub", family="sdxl", source="org/model"))
    assert hub.cross_attention_dim == 2048
    error = rejected(lora_bytes(family="sd15"), local)
    assert error.code == "wrong_shape"
    assert "768 features" in error.message and "expects 96" in error.message


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, bytes]:
    """A LoRA made the way trainers make them: peft adapters on the tiny SD 1.5 UNet, saved by the pipeline's
    own save_lora_weights (diffusers format)."""
    pytest.importorskip("peft")
    from engine.checkpoints import build_tiny_model
    from tests.engine.test_rendering import make_lora

    root = tmp_path_factory.mktemp("tiny-lora")
    spec = build_tiny_model(root / "models", "sd15")
    return spec, make_lora(spec, root / "style", seed=5).read_bytes()


def test_a_real_lora_of_the_tiny_model_passes_against_its_config(tiny_lora):
    spec, data = tiny_lora
    target = target_for(spec)
    assert target.cross_attention_dim == 32  # read from the tiny model's unet/config.json
    info = check(data, target)
    assert info.family == "sd15" and info.rank == 4 and info.cross_attention_dim == 32
    # The same file is the wrong shape for a real SD 1.5 model.
    assert rejected(data, SD15).code == "wrong_shape"


# --- bad files ------------------------------------------------------------------------------------------------

PICKLE = "Only .safetensors files are accepted: pickle-based files (.ckpt, .pt, .bin) can run code when loaded"


def test_empty_file():
    error = rejected(b"")
    assert error.code == "empty" and "empty" in error.message


def test_pickle_bytes_are_never_opened():
    error = rejected(pickle.dumps({"state_dict": {"w": [1.0, 2.0]}}, protocol=4))
    assert error.code == "pickle" and PICKLE in error.message


def test_a_torch_save_zip_is_refused():
    try:
        import torch

        buffer = io.BytesIO()
        torch.save({"lora.down.weight": torch.zeros(2, 2)}, buffer)
        data = buffer.getvalue()
    except ImportError:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
        data = buffer.getvalue()
    assert data.startswith(b"PK")
    assert rejected(data).code == "pickle"


@pytest.mark.parametrize("name", ["style.ckpt", "style.pt", "STYLE.BIN", "style.pth"])
def test_pickle_extensions_are_refused_whatever_they_hold(name: str):
    error = rejected(lora_bytes(), filename=name)
    assert error.code == "pickle" and PICKLE in error.message


def test_a_truncated_file():
    data = lora_bytes()
    error = rejected(data[: len(data) - 100])
    assert error.code == "truncated"
    assert "cut off" in error.message


def test_a_header_length_pointing_past_the_end():
    data = lora_bytes()
    error = rejected(len(data).to_bytes(8, "little") + data[8:])
    assert error.code == "truncated"
    assert "header says it is" in error.message


def test_an_implausible_header_length():
    error = rejected((2**62).to_bytes(8, "little") + b"{}")
    assert error.code == "not_safetensors"


def test_a_header_that_is_not_json():
    error = rejected(raw_safetensors({}, b"")[:8].replace(b"\x02", b"\x05") + b"{nope")
    assert error.code == "bad_header" and "JSON" in error.message


def test_a_header_that_is_a_json_list():
    encoded = b"[1, 2, 3]"
    error = rejected(len(encoded).to_bytes(8, "little") + encoded)
    assert error.code == "bad_header" and "JSON object" in error.message


def test_duplicate_tensor_names_in_the_header():
    entry = '{"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}'
    encoded = f'{{"a.lora_A.weight": {entry}, "a.lora_A.weight": {entry}}}'.encode()
    error = rejected(len(encoded).to_bytes(8, "little") + encoded + b"\x00\x00")
    assert error.code == "bad_header" and "twice" in error.message


def _one_pair(rank: int = 2, width: int = 768) -> dict[str, Any]:
    a = rank * width * 2
    b = 640 * rank * 2
    key = f"unet.{'down_blocks.1.attentions.0.transformer_blocks.0'}.attn2.to_k"
    return {
        f"{key}.lora_A.weight": {"dtype": "F16", "shape": [rank, width], "data_offsets": [0, a]},
        f"{key}.lora_B.weight": {"dtype": "F16", "shape": [640, rank], "data_offsets": [a, a + b]},
    }, a + b


def test_the_hand_written_pair_is_valid():
    header, size = _one_pair()
    assert check(raw_safetensors(header, b"\x00" * size)).rank == 2


def test_overlapping_offsets():
    header, size = _one_pair()
    key_b = next(k for k in header if k.endswith("lora_B.weight"))
    begin, end = header[key_b]["data_offsets"]
    header[key_b]["data_offsets"] = [begin - 2, end - 2]
    error = rejected(raw_safetensors(header, b"\x00" * (size - 2)))
    assert error.code == "bad_header" and "overlaps" in error.message


def test_offsets_that_do_not_match_the_shape():
    header, size = _one_pair()
    key_a = next(k for k in header if k.endswith("lora_A.weight"))
    header[key_a]["shape"] = [3, 768]
    error = rejected(raw_safetensors(header, b"\x00" * size))
    assert error.code == "bad_header" and "should take" in error.message


def test_a_gap_between_tensors():
    header, size = _one_pair()
    key_b = next(k for k in header if k.endswith("lora_B.weight"))
    begin, end = header[key_b]["data_offsets"]
    header[key_b]["data_offsets"] = [begin + 2, end + 2]
    error = rejected(raw_safetensors(header, b"\x00" * (size + 2)))
    assert error.code == "bad_header" and "gap" in error.message


def test_trailing_bytes_the_header_does_not_account_for():
    header, size = _one_pair()
    error = rejected(raw_safetensors(header, b"\x00" * (size + 16)))
    assert error.code == "bad_header" and "doesn't account" in error.message


def test_an_unknown_dtype():
    header, size = _one_pair()
    next(iter(header.values()))["dtype"] = "Q4"
    assert rejected(raw_safetensors(header, b"\x00" * size)).code == "bad_header"


def test_no_tensors():
    error = rejected(raw_safetensors({"__metadata__": {"format": "pt"}}, b""))
    assert error.code == "no_tensors" and "no tensors" in error.message


@pytest.mark.parametrize(
    "key",
    [
        "model.diffusion_model.input_blocks.0.0.weight",
        "first_stage_model.decoder.conv_in.weight",
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.0.resnets.0.conv1.weight",
    ],
)
def test_a_full_checkpoint_key(key: str):
    tensors = lora_tensors()
    tensors[key] = np.zeros((4, 4), np.float16)
    error = rejected(lora_bytes(tensors))
    assert error.code == "checkpoint"
    assert "This is a full model checkpoint, not a LoRA" in error.message


def test_a_key_that_is_no_lora_key():
    tensors = lora_tensors()
    tensors["emb_params"] = np.zeros((2, 768), np.float32)  # a textual-inversion embedding
    error = rejected(lora_bytes(tensors))
    assert error.code == "not_lora" and "'emb_params' is not a LoRA weight" in error.message


def test_lycoris_weights_are_named():
    tensors = {"lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": np.zeros((4, 4), np.float16)}
    error = rejected(lora_bytes(tensors))
    assert error.code == "not_lora" and "LyCORIS" in error.message


def test_a_down_matrix_without_its_up_matrix():
    tensors = lora_tensors()
    del tensors[next(k for k in tensors if k.endswith("attn2.to_v.lora_B.weight"))]
    error = rejected(lora_bytes(tensors))
    assert error.code == "bad_pair" and "no up matrix" in error.message


def test_inconsistent_ranks_in_a_pair():
    tensors = lora_tensors(rank=4)
    key = next(k for k in tensors if k.endswith("attn2.to_k.lora_B.weight"))
    tensors[key] = np.zeros((640, 8), np.float16)
    error = rejected(lora_bytes(tensors))
    assert error.code == "bad_pair" and "rank 4" in error.message and "expects 8" in error.message


def test_an_alpha_that_is_not_a_number():
    tensors = lora_tensors(style="kohya")
    key = next(k for k in tensors if k.endswith(".alpha"))
    tensors[key] = np.zeros((2,), np.float32)
    assert rejected(lora_bytes(tensors)).code == "bad_pair"


def test_integer_weights_are_refused():
    tensors = lora_tensors()
    key = next(k for k in tensors if k.endswith("lora_A.weight"))
    tensors[key] = np.zeros(tensors[key].shape, np.int32)
    assert rejected(lora_bytes(tensors)).code == "not_lora"


@pytest.mark.parametrize("style", ["diffusers", "kohya"])
def test_an_sdxl_lora_on_an_sd15_model(style: str):
    error = rejected(lora_bytes(family="sdxl", style=style), SD15)
    assert error.code == "wrong_family"
    assert error.message.startswith("This style LoRA was made for SDXL; SD 1.5 photo is an SD 1.5 model")


def test_an_sdxl_unet_lora_without_text_encoder_keys_is_recognised_by_its_shapes():
    tensors = {k: v for k, v in lora_tensors(family="sdxl").items() if k.startswith("unet.")}
    error = rejected(lora_bytes(tensors), SD15)
    assert error.code == "wrong_family" and "made for SDXL" in error.message


def test_an_sd15_lora_on_an_sdxl_model():
    error = rejected(lora_bytes(family="sd15"), SDXL)
    assert error.code == "wrong_family"
    assert error.message.startswith("This style LoRA was made for SD 1.5; SDXL photo is an SDXL model")


def test_an_sd2_lora_is_named():
    error = rejected(lora_bytes(family="sd15", width=1024), SD15)
    assert error.code == "wrong_family" and "SD 2.x" in error.message


def test_too_large_by_the_setting(settings: Any):
    data = lora_bytes()
    settings.STYLE_LORA_MAX_BYTES = len(data) - 1
    error = rejected(data)
    assert error.code == "too_large"
    assert "larger than" in error.message and "limit for a style LoRA" in error.message
    settings.STYLE_LORA_MAX_BYTES = len(data)
    assert check(data).size == len(data)


def test_the_module_does_not_import_torch():
    import subprocess
    import sys

    probe = (
        "import sys; import templates_app.lora_files as m; "
        "print(sorted(x for x in sys.modules if x.split('.')[0] in {'torch', 'diffusers', 'peft', 'transformers'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
