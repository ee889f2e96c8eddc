"""The built-in ``onnx`` and ``torchscript`` exporters through the Exporter contract, on a tiny random BERT."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from pydantic import ValidationError
from transformers import BertConfig, BertModel

from assistant_builder.contracts import ExportJob
from assistant_builder.errors import ExportVerificationError
from assistant_builder.registry import build_registry

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("logits",)
SHAPES = [(1, 3), (7, 40), (4, 17), (2, 1)]


class TinyClassifier(torch.nn.Module):
    """A task-style model: BERT, masked mean pooling, a linear head; returns a dict."""

    def __init__(self, use_token_types: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=37, max_position_embeddings=64)
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = torch.nn.Linear(32, 5)
        self.use_token_types = use_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
        types = token_type_ids if self.use_token_types else None
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=types).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return {"logits": self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))}


class ShapeBakingModel(torch.nn.Module):
    """forward() turns the sequence length into a Python int: a trace freezes it."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(100, 4)

    def forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
        length = int(input_ids.shape[1])
        return {"logits": self.embed(input_ids).sum(1) / length}


def make_batch(rows: int, length: int, seed: int) -> dict[str, np.ndarray]:
    """Right-padded int64 inputs; the first row is full length, the others random lengths."""
    rng = np.random.default_rng(seed)
    lengths = [length] + [int(n) for n in rng.integers(1, length + 1, rows - 1)]
    input_ids = np.zeros((rows, length), dtype=np.int64)
    attention_mask = np.zeros((rows, length), dtype=np.int64)
    token_type_ids = np.zeros((rows, length), dtype=np.int64)
    for row, n in enumerate(lengths):
        input_ids[row, :n] = rng.integers(5, 100, n)
        input_ids[row, 0] = 2
        attention_mask[row, :n] = 1
        token_type_ids[row, n // 2:n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def pytorch_logits(model: torch.nn.Module, batch: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()})["logits"].numpy()


def export(name: str, model: torch.nn.Module, out, **options):  # type: ignore[no-untyped-def]
    exporter = build_registry().create("exporter", name)
    example = {k: torch.from_numpy(v) for k, v in make_batch(4, 12, seed=1).items()}
    job = ExportJob(model, example, INPUTS, OUTPUTS, out, exporter.Options.model_validate(options))
    return exporter, exporter.export(job)


def int8_initializers(path) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.name for t in onnx.load(str(path)).graph.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)]


def weight_bytes(path) -> int:  # type: ignore[no-untyped-def]
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


def assert_only(directory, *names: str) -> None:
    assert sorted(p.name for p in directory.iterdir()) == sorted(names), "unexpected or temporary files left behind"


@pytest.fixture(scope="module")
def model() -> TinyClassifier:
    return TinyClassifier().eval()


@pytest.fixture(scope="module")
def onnx_plain(model, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("onnx_plain")
    return (out, *export("onnx", model, out, optimize=False))


@pytest.fixture(scope="module")
def onnx_full(model, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("onnx_full")
    return (out, *export("onnx", model, out, optimize=True, quantize=True))


@pytest.fixture(scope="module")
def torchscript(model, tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("torchscript")
    return (out, *export("torchscript", model, out))


# ------------------------------------------------------------------------------------------------
# onnx
# ------------------------------------------------------------------------------------------------


def test_onnx_writes_one_self_contained_file_with_dynamic_axes(onnx_plain) -> None:  # type: ignore[no-untyped-def]
    out, _, artifacts = onnx_plain
    assert [(a.exporter, a.variant, a.path) for a in artifacts] == [("onnx", "fp32", out / "model.onnx")]
    assert_only(out, "model.onnx", "model.prepared", "model.prepared.weights")  # the prepared graph is ONNX Runtime's, not ours
    graph = onnx.load(str(out / "model.onnx")).graph
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer)
    assert [i.name for i in graph.input] == list(INPUTS)
    assert [o.name for o in graph.output] == list(OUTPUTS)
    for value in graph.input:
        assert [d.dim_param for d in value.type.tensor_type.shape.dim] == ["batch", "sequence"]
    logits_dims = graph.output[0].type.tensor_type.shape.dim
    assert logits_dims[0].dim_param == "batch" and logits_dims[1].dim_value == 5


@pytest.mark.parametrize("rows,length", SHAPES)
def test_onnx_fp32_matches_pytorch(onnx_plain, model, rows: int, length: int) -> None:  # type: ignore[no-untyped-def]
    _, exporter, artifacts = onnx_plain
    batch = make_batch(rows, length, seed=rows * 100 + length)
    outputs = exporter.load_runner(artifacts[0], OUTPUTS)(batch)
    assert list(outputs) == ["logits"]
    np.testing.assert_allclose(outputs["logits"], pytorch_logits(model, batch), atol=1e-4, rtol=0)


def test_onnx_optimized_graph_is_fused_and_matches(onnx_full, model) -> None:  # type: ignore[no-untyped-def]
    out, exporter, artifacts = onnx_full
    assert [(a.variant, a.path.name) for a in artifacts] == [("fp32", "model.onnx"), ("int8", "model.int8.onnx")]
    # prepare = 'default': only the variant the runtime opens by default (int8) gets a prepared graph
    assert_only(out, "model.onnx", "model.int8.onnx", "model.int8.prepared", "model.int8.prepared.weights")
    assert "prepared" not in artifacts[0].details and artifacts[1].details["prepared"]["graph"] == "model.int8.prepared"
    ops = {node.op_type for node in onnx.load(str(artifacts[0].path)).graph.node}
    assert {"Attention", "SkipLayerNormalization", "BiasGelu"} <= ops
    runner = exporter.load_runner(artifacts[0], OUTPUTS)
    for rows, length in SHAPES:
        batch = make_batch(rows, length, seed=rows + length)
        np.testing.assert_allclose(runner(batch)["logits"], pytorch_logits(model, batch), atol=1e-4, rtol=0)


def test_onnx_int8_is_smaller_and_mostly_agrees(onnx_full, model) -> None:  # type: ignore[no-untyped-def]
    _, exporter, artifacts = onnx_full
    fp32, int8 = artifacts
    graph = onnx.load(str(int8.path)).graph
    assert any(node.op_type in {"DynamicQuantizeLinear", "MatMulInteger"} for node in graph.node)
    # by default the embedding tables stay fp32 (quantize_embeddings = false): only the MatMul weights shrink
    assert "word_embeddings" not in " ".join(int8_initializers(int8.path))
    assert int8_initializers(int8.path)  # the MatMul weights
    assert weight_bytes(int8.path) < weight_bytes(fp32.path)
    batch = make_batch(64, 24, seed=7)
    logits = exporter.load_runner(int8, OUTPUTS)(batch)["logits"]
    agreement = float(np.mean(logits.argmax(1) == pytorch_logits(model, batch).argmax(1)))
    assert agreement >= 0.8, agreement


def test_onnx_int8_with_quantized_embeddings_is_a_quarter_of_the_weights(tmp_path, model) -> None:  # type: ignore[no-untyped-def]
    _, artifacts = export("onnx", model, tmp_path, quantize=True, quantize_embeddings=True, prepare="none")
    fp32, int8 = artifacts
    # The weights shrink about 4x (MiniLM-L6: 90 MB to 23 MB). On this tiny model the whole file
    # does not: the extra quantisation nodes outweigh 60 kB of weights.
    assert weight_bytes(int8.path) < 0.4 * weight_bytes(fp32.path)
    assert "word_embeddings" in " ".join(int8_initializers(int8.path))


def test_onnx_runner_feeds_only_the_inputs_the_graph_declares(tmp_path, onnx_plain) -> None:  # type: ignore[no-untyped-def]
    no_types = TinyClassifier(use_token_types=False).eval()
    exporter, artifacts = export("onnx", no_types, tmp_path, optimize=False)
    assert [i.name for i in onnx.load(str(artifacts[0].path)).graph.input] == ["input_ids", "attention_mask"]
    batch = make_batch(3, 9, seed=3)
    outputs = exporter.load_runner(artifacts[0], OUTPUTS)({**batch, "labels": np.zeros(3, dtype=np.int64)})
    np.testing.assert_allclose(outputs["logits"], pytorch_logits(no_types, batch), atol=1e-4, rtol=0)
    _, plain_exporter, plain = onnx_plain  # extra keys are ignored by a full graph too
    assert plain_exporter.load_runner(plain[0], OUTPUTS)({**batch, "labels": np.zeros(3, dtype=np.int64)})["logits"].shape == (3, 5)


def test_onnx_falls_back_to_the_plain_graph_when_optimization_fails(tmp_path, model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from onnxruntime.transformers import optimizer

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("fusion exploded")

    monkeypatch.setattr(optimizer, "optimize_model", broken)
    with pytest.warns(RuntimeWarning, match="optimisation skipped.*fusion exploded"):
        exporter, artifacts = export("onnx", model, tmp_path, optimize=True, prepare="none")
    assert_only(tmp_path, "model.onnx")
    assert "Attention" not in {node.op_type for node in onnx.load(str(artifacts[0].path)).graph.node}
    batch = make_batch(3, 11, seed=5)
    np.testing.assert_allclose(exporter.load_runner(artifacts[0], OUTPUTS)(batch)["logits"], pytorch_logits(model, batch), atol=1e-4)


def test_onnx_prepared_graph_is_recorded_and_opened_by_the_runner(onnx_plain, model) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from assistant_builder.runtime.sessions import open_session

    out, exporter, artifacts = onnx_plain
    entry = artifacts[0].details["prepared"]
    assert entry == {"graph": "model.prepared", "weights": "model.prepared.weights", "onnxruntime": ort.__version__,
                     "level": "extended"}
    prepared_ops = {node.op_type for node in onnx.load(str(out / "model.prepared"), load_external_data=False).graph.node}
    assert "BiasGelu" in prepared_ops  # ONNX Runtime's fusions are baked in
    session, opened = open_session(artifacts[0].path, prepared=entry)
    assert opened == out / "model.prepared"
    batch = make_batch(5, 21, seed=11)
    logits = session.run(["logits"], {name: batch[name] for name in INPUTS})[0]
    np.testing.assert_allclose(logits, pytorch_logits(model, batch), atol=1e-4, rtol=0)


@pytest.mark.parametrize("choice,expected", [("none", set()), ("all", {"fp32", "int8"})])
def test_onnx_prepare_option_chooses_the_variants(tmp_path, model, choice: str, expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    _, artifacts = export("onnx", model, tmp_path, quantize=True, prepare=choice)
    assert {a.variant for a in artifacts if "prepared" in a.details} == expected
    assert {p.name for p in tmp_path.glob("*.prepared")} == {a.path.stem + ".prepared" for a in artifacts if a.variant in expected}


def test_a_prepared_graph_that_disagrees_is_dropped(tmp_path, model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Stand in a graph of another model for ONNX Runtime's prepared graph: it must not reach the bundle."""
    from assistant_builder.runtime import sessions

    other_dir = tmp_path / "other"
    torch.manual_seed(1)
    other = TinyClassifier().eval()
    with torch.no_grad():
        for parameter in other.head.parameters():
            parameter.add_(1.0)
    export("onnx", other, other_dir, prepare="none")
    real = sessions.prepare_graph

    def swapped(source):  # type: ignore[no-untyped-def]
        entry = real(source)
        (source.parent / entry["graph"]).write_bytes((other_dir / "model.onnx").read_bytes())
        return {key: value for key, value in entry.items() if key != "weights"}

    monkeypatch.setattr(sessions, "prepare_graph", swapped)
    with pytest.warns(RuntimeWarning, match="no prepared graph for fp32 .*does not reproduce model.onnx"):
        exporter, artifacts = export("onnx", model, tmp_path / "mine")
    assert artifacts[0].details == {}
    assert_only(tmp_path / "mine", "model.onnx")  # the prepared files were removed
    batch = make_batch(3, 9, seed=4)
    np.testing.assert_allclose(exporter.load_runner(artifacts[0], OUTPUTS)(batch)["logits"], pytorch_logits(model, batch), atol=1e-4)


def test_a_prepared_graph_that_cannot_be_written_is_dropped(tmp_path, model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from assistant_builder.errors import ModelError
    from assistant_builder.runtime import sessions

    def failing(source):  # type: ignore[no-untyped-def]
        raise ModelError(f"{source}: ONNX Runtime could not prepare the graph: disk says no")

    monkeypatch.setattr(sessions, "prepare_graph", failing)
    with pytest.warns(RuntimeWarning, match="no prepared graph for fp32 .*disk says no"):
        _, artifacts = export("onnx", model, tmp_path)
    assert artifacts[0].details == {} and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_onnx_restores_the_models_attention_implementation(onnx_plain, model) -> None:  # type: ignore[no-untyped-def]
    assert model.encoder.config._attn_implementation == "sdpa"


# ------------------------------------------------------------------------------------------------
# torchscript
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows,length", SHAPES)
def test_torchscript_matches_pytorch(torchscript, model, rows: int, length: int) -> None:  # type: ignore[no-untyped-def]
    out, exporter, artifacts = torchscript
    assert [(a.exporter, a.variant, a.path) for a in artifacts] == [("torchscript", "fp32", out / "model.pt")]
    assert_only(out, "model.pt")
    batch = make_batch(rows, length, seed=rows * 10 + length)
    outputs = exporter.load_runner(artifacts[0], OUTPUTS)({**batch, "labels": np.zeros(rows, dtype=np.int64)})
    assert list(outputs) == ["logits"]
    np.testing.assert_allclose(outputs["logits"], pytorch_logits(model, batch), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["torchscript", "onnx"])
def test_a_trace_that_bakes_in_shapes_is_refused(tmp_path, name: str) -> None:
    with pytest.raises(ExportVerificationError, match="does not reproduce the PyTorch model"):
        export(name, ShapeBakingModel().eval(), tmp_path, **({"optimize": False} if name == "onnx" else {}))
    assert_only(tmp_path)


# ------------------------------------------------------------------------------------------------
# registration and options
# ------------------------------------------------------------------------------------------------


def test_exporters_are_registered_with_descriptions() -> None:
    registry = build_registry()
    for name in ("onnx", "torchscript"):
        registration = registry.get("exporter", name)
        assert registration.component.name == name and registration.component.description


def test_options_validate_and_reject_unknown_keys() -> None:
    registry = build_registry()
    onnx_options = registry.get("exporter", "onnx").component.Options
    assert onnx_options().model_dump() == {"opset": 17, "optimize": False, "quantize": False, "per_channel": True, "prepare": "default",
                                            "quantize_embeddings": False, "accuracy_aware": True, "max_fp32_nodes": 12,
                                            "nodes_to_exclude": []}
    for bad in ({"quantise": True}, {"opset": 9}, {"optimize": "sometimes"}):
        with pytest.raises(ValidationError):
            onnx_options.model_validate(bad)
    torchscript_options = registry.get("exporter", "torchscript").component.Options
    assert torchscript_options().model_dump() == {"strict": False}
    with pytest.raises(ValidationError):
        torchscript_options.model_validate({"strict": False, "script": True})
