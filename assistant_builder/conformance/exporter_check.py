"""An exporter exports the reference task's tiny sentence classifier, and what it wrote loads back and computes
what the PyTorch model computes, on the example batch and on a batch of another shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant_builder.conformance.bench import MODEL_INPUTS, Workspace
from assistant_builder.conformance.results import CheckFailed, Recorder, expect
from assistant_builder.contracts import ExportedArtifact, Exporter, ExportJob

#: largest output difference allowed for an fp32 artefact
FP32_TOLERANCE = 1e-3


def _numpy(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v.numpy() for k, v in batch.items()}


def _compare(runner: Any, batch: dict[str, Any], expected: dict[str, Any], output_names: tuple[str, ...], exact: bool) -> float:
    import numpy as np

    outputs = runner(_numpy(batch))
    expect(isinstance(outputs, dict), f"the runner must return a dict of numpy arrays, got {type(outputs).__name__}")
    worst = 0.0
    for name in output_names:
        expect(name in outputs, f"the runner's outputs lack '{name}'; it returned {sorted(outputs)}")
        got, want = np.asarray(outputs[name]), expected[name].float().numpy()
        expect(got.shape == want.shape, f"output '{name}' has shape {got.shape} on inputs of shape "
                                        f"{tuple(batch['input_ids'].shape)}; PyTorch gives {want.shape}")
        expect(np.isfinite(got).all(), f"output '{name}' has NaN or infinite values")
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))))
    if exact:
        expect(worst <= FP32_TOLERANCE, f"fp32 outputs differ from PyTorch by up to {worst:.2e} (allowed {FP32_TOLERANCE:g})")
    return worst


def check_exporter(recorder: Recorder, exporter_class: type[Exporter], workspace: Workspace) -> None:
    state: dict[str, Any] = {}
    output_names = ("logits",)

    def export() -> str:
        import torch

        bench = workspace.reference_bench()
        model = bench.build_model().eval()
        example = bench.batch(bench.valid_features[:2], targets=False)
        probe = bench.batch(bench.train_features[:5], targets=False)  # another batch size and length, with padding
        with torch.no_grad():
            state["expected"] = {"example": model(**example), "probe": model(**probe)}
        state["batches"] = {"example": example, "probe": probe}
        out = workspace.scratch(f"export-{exporter_class.name}") / exporter_class.name
        out.mkdir()
        exporter = exporter_class()
        artifacts = exporter.export(ExportJob(model, example, MODEL_INPUTS, output_names, out, exporter.Options()))
        expect(isinstance(artifacts, list) and artifacts, f"export() must return a non-empty list of ExportedArtifact, got {artifacts!r}")
        for artifact in artifacts:
            expect(isinstance(artifact, ExportedArtifact), f"export() returned {artifact!r}; expected contracts.ExportedArtifact")
            expect(artifact.exporter == exporter_class.name,
                   f"artifact.exporter is {artifact.exporter!r}; expected the exporter's name {exporter_class.name!r}")
            expect(isinstance(artifact.variant, str) and artifact.variant, f"artifact.variant must name the variant (fp32, int8...), got {artifact.variant!r}")
            path = Path(artifact.path)
            expect(path.exists(), f"artifact {artifact.variant}: {path} does not exist")
            expect(path.resolve().is_relative_to(out.resolve()), f"artifact {artifact.variant}: {path} is outside job.output_dir ({out})")
        variants = [a.variant for a in artifacts]
        expect(len(set(variants)) == len(variants), f"variants must be unique, got {variants}")
        state["exporter"], state["artifacts"] = exporter, artifacts
        return ", ".join(f"{a.variant}: {Path(a.path).name}" for a in artifacts)

    def load_runner() -> str:
        runners = {}
        for artifact in state["artifacts"]:
            runner = state["exporter"].load_runner(artifact, output_names)
            expect(callable(runner), f"load_runner() must return a callable runner, got {type(runner).__name__}")
            runners[artifact.variant] = runner
        state["runners"] = runners
        return ", ".join(runners)

    def outputs(batch_name: str) -> Any:
        def check() -> str:
            details = []
            for variant, runner in state["runners"].items():
                try:
                    worst = _compare(runner, state["batches"][batch_name], state["expected"][batch_name], output_names,
                                     exact=variant == "fp32")
                except CheckFailed as failed:
                    raise CheckFailed(f"{variant}: {failed}") from None
                details.append(f"{variant} max diff {worst:.1e}")
            shape = tuple(state["batches"][batch_name]["input_ids"].shape)
            return f"inputs {shape}: " + ", ".join(details)
        return check

    loaded = recorder.run_steps([("export", export), ("load_runner", load_runner)])
    for name, batch_name in (("outputs", "example"), ("other shapes", "probe")):
        if loaded:
            recorder.run(name, outputs(batch_name))
        else:
            recorder.add(name, "skip", "needs 'export' and 'load_runner', which did not pass")
