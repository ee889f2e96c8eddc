"""The ``onnx`` exporter on a causal LM: onnxruntime-genai's builder, the loss runner and greedy/sampled decoding.

One tiny random-init Llama (``make_tiny_causal_lm``) is exported once (fp32, about ten seconds: the
builder runs in a subprocess that imports torch); PyTorch references come straight from
``AutoModelForCausalLM``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from assistant_builder.conformance.tiny_causal_lm import make_tiny_causal_lm
from assistant_builder.contracts import ExportedArtifact, ExportJob
from assistant_builder.errors import ModelError
from assistant_builder.registry import build_registry
from assistant_builder.runtime.generation import GenaiModel, GenerationSettings, timed_generate
from assistant_builder_exporters.causal_lm import (
    VARIANTS, causal_lm_generator, export_causal_lm, is_causal_lm, run_builder, supported_architectures,
)
from assistant_builder_exporters.onnx_exporter import OnnxOptions, causal_lm_variants

PROMPTS = [[1, 870, 201, 432, 297, 262], [5, 6, 7], [42, 350, 81, 262, 269, 14, 223], [300]]
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


class SFTModel(torch.nn.Module):
    """What the exporter needs of the generation task's ``CausalLMForSFT``: ``is_causal_lm``, the HF model
    as ``lm`` and ``save_pretrained`` writing its folder with the base model's tokenizer files."""

    is_causal_lm = True

    def __init__(self, base: Path) -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM

        self.lm = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
        self.base_dir = base

    def save_pretrained(self, directory: Path) -> None:
        self.lm.save_pretrained(directory)
        for name in ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json"):
            shutil.copy2(self.base_dir / name, Path(directory) / name)  # tokenizer.json: the exporter takes base_dir's


@pytest.fixture(scope="module")
def sft_model(base: Path) -> SFTModel:
    return SFTModel(base)


@pytest.fixture(scope="module")
def exported(sft_model, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    exporter = build_registry().create("exporter", "onnx")
    out = tmp_path_factory.mktemp("export")
    job = ExportJob(sft_model, {}, ("input_ids", "attention_mask"), ("nll_sum", "token_count"), out, exporter.Options())
    return exporter, exporter.export(job)


def torch_greedy(lm, prompt: list[int], new_tokens: int) -> list[int]:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        out = lm.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                          max_new_tokens=new_tokens, do_sample=False)[0, len(prompt):].tolist()
    return out[: out.index(2)] if 2 in out else out


def test_export_writes_one_genai_folder_per_variant(exported, sft_model: SFTModel) -> None:  # type: ignore[no-untyped-def]
    _, artifacts = exported
    assert is_causal_lm(sft_model) and not is_causal_lm(torch.nn.Linear(2, 2))
    assert [(a.exporter, a.variant, a.optional) for a in artifacts] == [("onnx", "fp32", False)]
    folder = artifacts[0].path
    assert folder.name == "fp32" and folder.is_dir()
    names = {p.name for p in folder.iterdir()}
    assert {"model.onnx", "genai_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
            "generation_config.json"} <= names
    assert not [n for n in (p.name for p in folder.parent.iterdir()) if n.startswith(".")]  # scratch removed
    details = artifacts[0].details
    assert details["kind"] == "causal_lm" and details["runtime"] == "onnxruntime-genai" and details["precision"] == "fp32"
    assert details["eos_token_ids"] == [2]
    json.dumps(details)  # JSON-ready for the manifest
    config = json.loads((folder / "genai_config.json").read_text())
    assert config["model"]["decoder"]["num_key_value_heads"] == 2


def test_loss_runner_matches_torch(exported, sft_model) -> None:  # type: ignore[no-untyped-def]
    exporter, artifacts = exported
    runner = exporter.load_runner(artifacts[0], ("nll_sum", "token_count"))
    rng = np.random.default_rng(0)
    input_ids = rng.integers(3, 900, (4, 14)).astype(np.int64)
    attention = np.ones_like(input_ids)
    for row, length in enumerate([14, 9, 5, 2]):  # right padding, as the task collates
        attention[row, length:] = 0
        input_ids[row, length:] = 2
    loss_mask = attention.copy()
    loss_mask[:, :4] = 0  # the prompt is no target
    loss_mask[3, :] = 0  # a row without targets
    got = runner({"input_ids": input_ids, "attention_mask": attention, "loss_mask": loss_mask})
    with torch.no_grad():
        logits = sft_model.lm(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention)).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), torch.from_numpy(input_ids[:, 1:]), reduction="none")
    mask = torch.from_numpy(loss_mask[:, 1:]).float()
    np.testing.assert_allclose(got["nll_sum"], (nll * mask).sum(1).numpy(), atol=1e-3, rtol=0)
    np.testing.assert_array_equal(got["token_count"], mask.sum(1).numpy())
    assert got["nll_sum"].dtype == got["token_count"].dtype == np.float32 and got["nll_sum"][3] == 0.0


def test_greedy_generator_matches_torch(exported, sft_model) -> None:  # type: ignore[no-untyped-def]
    exporter, artifacts = exported
    generated = exporter.load_generator(artifacts[0])(PROMPTS, NEW_TOKENS)
    assert generated == [torch_greedy(sft_model.lm, prompt, NEW_TOKENS) for prompt in PROMPTS]
    assert all(len(ids) <= NEW_TOKENS for ids in generated)


def test_a_corrupted_export_generates_differently(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    from onnx import numpy_helper

    _, artifacts = exported
    broken = tmp_path / "broken"
    shutil.copytree(artifacts[0].path, broken)
    graph = onnx.load(str(broken / "model.onnx"))  # loads model.onnx.data too
    name = "model.layers.0.attn.qkv_proj.MatMul.weight"
    for index, tensor in enumerate(graph.graph.initializer):
        if tensor.name == name:
            graph.graph.initializer[index].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 4.0, name))
            break
    else:
        pytest.fail(f"no initializer {name} in {[t.name for t in graph.graph.initializer]}")
    (broken / "model.onnx.data").unlink()
    onnx.save(graph, str(broken / "model.onnx"), save_as_external_data=True, location="model.onnx.data")
    good = causal_lm_generator(artifacts[0].path)(PROMPTS, NEW_TOKENS)
    bad = causal_lm_generator(broken)(PROMPTS, NEW_TOKENS)
    assert bad != good


def test_sampling_is_reproducible_with_a_seed_and_differs_from_greedy(exported) -> None:  # type: ignore[no-untyped-def]
    _, artifacts = exported
    model = GenaiModel(artifacts[0].path)
    prompt = PROMPTS[0]
    greedy = model.generate_ids(prompt, GenerationSettings(max_new_tokens=20))
    hot = GenerationSettings(max_new_tokens=20, temperature=5.0, seed=123)
    first, second = model.generate_ids(prompt, hot), model.generate_ids(prompt, hot)
    assert first == second
    assert first != greedy
    other = model.generate_ids(prompt, GenerationSettings(max_new_tokens=20, temperature=5.0, seed=321))
    assert other != first
    narrow = GenerationSettings(max_new_tokens=20, temperature=5.0, top_k=1, seed=5)  # top_k 1 is greedy
    assert model.generate_ids(prompt, narrow) == greedy


def test_generation_stops_at_eos_and_context(exported) -> None:  # type: ignore[no-untyped-def]
    _, artifacts = exported
    model = GenaiModel(artifacts[0].path)
    assert model.eos_token_ids == (2,) and model.context_length == 512
    greedy = model.generate_ids(PROMPTS[1], GenerationSettings(max_new_tokens=5))
    model.eos_token_ids = (greedy[2],)  # pretend the third token ends the answer
    assert model.generate_ids(PROMPTS[1], GenerationSettings(max_new_tokens=5)) == greedy[:2]
    model.eos_token_ids = (2,)
    near_end = [5] * 508
    assert len(model.generate_ids(near_end, GenerationSettings(max_new_tokens=50))) <= 4
    with pytest.raises(ValueError, match="context"):
        model.generate_ids([5] * 512)
    with pytest.raises(ValueError, match="at least one token"):
        model.generate_ids([])


def test_stream_text_and_timing(exported) -> None:  # type: ignore[no-untyped-def]
    _, artifacts = exported
    model = GenaiModel(artifacts[0].path)
    ids = model.generate_ids(PROMPTS[2], GenerationSettings(max_new_tokens=10))
    text = model.tokenizer.decode(ids, skip_special_tokens=True)
    assert "".join(model.stream_text(PROMPTS[2], GenerationSettings(max_new_tokens=10))) == text
    timed, timing = timed_generate(model, PROMPTS[2], GenerationSettings(max_new_tokens=10))
    assert timed == ids and timing.tokens == len(ids)
    assert 0 < timing.ttft_ms <= timing.seconds * 1000 and timing.tokens_per_second > 0


def test_variants_follow_the_options() -> None:
    assert causal_lm_variants(OnnxOptions()) == ["fp32"]
    assert causal_lm_variants(OnnxOptions(quantize=True)) == ["fp32", "int8"]
    assert set(VARIANTS) == {"fp32", "int8", "int4"}


def test_quantize_adds_an_optional_int8_folder(exported, sft_model, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import assistant_builder_exporters.causal_lm as causal_lm

    exporter, artifacts = exported
    calls = []

    def fake_builder(source: Path, target: Path, precision: str, options: dict, *, cache_dir: Path) -> None:
        calls.append((precision, dict(options)))
        target.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", "model.onnx.data", "genai_config.json"):  # the builder's own files; the rest is carried
            shutil.copy2(artifacts[0].path / name, target / name)

    monkeypatch.setattr(causal_lm, "run_builder", fake_builder)
    job = ExportJob(sft_model, {}, ("input_ids", "attention_mask"), ("nll_sum", "token_count"), tmp_path,
                    exporter.Options(quantize=True))
    made = exporter.export(job)
    assert [(a.variant, a.optional, a.path) for a in made] == [("fp32", False, tmp_path / "fp32"), ("int8", True, tmp_path / "int8")]
    assert calls == [("fp32", {}), ("int8", dict(VARIANTS["int8"].options))]
    assert made[1].details["precision"] == "int8" and made[1].details["builder_options"] == dict(VARIANTS["int8"].options)
    assert {"tokenizer.json", "chat_template.jinja", "generation_config.json"} <= {p.name for p in (tmp_path / "int8").iterdir()}


def test_load_generator_refuses_other_artefacts(exported, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exporter, _ = exported
    with pytest.raises(ModelError, match="causal LM"):
        exporter.load_generator(ExportedArtifact("onnx", "fp32", tmp_path / "model.onnx"))


class _Saves:
    """A model whose save_pretrained writes the given config.json and a tokenizer."""

    is_causal_lm = True

    def __init__(self, config: dict, base: Path) -> None:
        self.config, self.base = config, base

    def save_pretrained(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.config))
        shutil.copy2(self.base / "tokenizer.json", directory / "tokenizer.json")


def test_unsupported_architecture_names_the_supported_ones(base: Path, tmp_path: Path) -> None:
    model = _Saves({"architectures": ["BertForMaskedLM"], "model_type": "bert"}, base)
    assert "LlamaForCausalLM" in supported_architectures() and "Qwen2ForCausalLM" in supported_architectures()
    with pytest.raises(ModelError, match="BertForMaskedLM.*LlamaForCausalLM") as caught:
        export_causal_lm(model, tmp_path / "out", ["fp32"])
    assert "cannot convert" in caught.value.message
    assert not (tmp_path / "out" / "fp32").exists()


def test_unknown_variant_is_refused(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="int3"):
        export_causal_lm(_Saves({}, base), tmp_path, ["fp32", "int3"])


def test_builder_failure_reports_its_last_lines(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is_symmetric must be") as caught:
        run_builder(base, tmp_path / "out", "int8", {"is_symmetric": "maybe"}, cache_dir=tmp_path / "cache")
    assert "exit code 1" in caught.value.message
