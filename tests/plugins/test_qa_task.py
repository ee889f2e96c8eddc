"""The qa task through its public contract: readers, windowing, decoding, official SQuAD metrics, model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant_builder.errors import DataError
from assistant_builder.recipe.schema import DataSection
from assistant_builder.registry import build_registry
from assistant_builder.tokenization import load_tokenizer

REPO = Path(__file__).resolve().parents[2]
CONTEXT = "the alarm is at 7 am. the weather in london is cold. mom can call at 6 pm."


@pytest.fixture
def task():
    return build_registry().create("task", "qa")


def options(task, **values):
    return task.Options.model_validate(values)


def squad(*paragraphs: tuple[str, list[dict]]) -> dict:
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs]}]}


def qa(qid: str, question: str, answers: list[tuple[str, int]], **extra) -> dict:
    return {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers], **extra}


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, indent=1))
    return path


def load(task, path: Path, validation: Path | None = None, **opts):
    return task.load_data(DataSection(train=path, validation=validation or path), options(task, **opts))


GOOD = squad((CONTEXT, [qa("q1", "when is the alarm", [("7 am", 16)]), qa("q2", "what is the weather in london", [("cold", 47)])]))


# ------------------------------------------------------------------------------------------ data


def test_reads_squad_and_jsonl(task, tmp_path):
    write_json(tmp_path / "train.json", GOOD)
    rows = [{"question": "who can call", "context": CONTEXT, "answers": {"text": ["mom"], "answer_start": [53]}},
            {"id": "x", "question": "when can mom call", "context": CONTEXT, "answers": [{"text": "6 pm", "answer_start": 69}]}]
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load(task, tmp_path / "train.json", tmp_path / "valid.jsonl")
    assert loaded.labels == []
    assert [(e.id, e.answers[0].text, e.answers[0].start) for e in loaded.train] == [("q1", "7 am", 16), ("q2", "cold", 47)]
    assert [(e.id, e.question, e.answers[0].text) for e in loaded.validation] == [(None, "who can call", "mom"), ("x", "when can mom call", "6 pm")]
    assert set(loaded.sources) == {"train", "validation"}


def test_held_out_validation_uses_unseen_contexts(task, tmp_path):
    paragraphs = [(f"{CONTEXT} item {i}.", [qa(f"q{i}-{j}", f"question {j}", [("7 am", 16)]) for j in range(3)]) for i in range(10)]
    write_json(tmp_path / "train.json", squad(*paragraphs))
    loaded = task.load_data(DataSection(train=tmp_path / "train.json", validation_split=0.2), options(task))
    assert len(loaded.validation) == 6 and len(loaded.train) == 24
    assert not {e.context for e in loaded.validation} & {e.context for e in loaded.train}


BAD_SQUAD = [
    (squad((CONTEXT, [qa("q1", "when", [("8 am", 16)])])), r"train.json:\d+: question 'q1': answer '8 am' does not match the context at answer_start 16"),
    (squad(("  ", [qa("q1", "when", [("7 am", 16)])])), r"question 'q1': empty context"),
    (squad((CONTEXT, [qa("q9", " ", [("7 am", 16)])])), r"question 'q9': empty question"),
    (squad((CONTEXT, [qa("q3", "when", [], is_impossible=True)])), r"question 'q3': question is marked is_impossible"),
    (squad((CONTEXT, [qa("q4", "when", [])])), r"question 'q4': question has no answers"),
    ({"data": {"oops": 1}}, r"'data' must be a list"),
]


@pytest.mark.parametrize(("content", "message"), BAD_SQUAD)
def test_bad_squad_is_located(task, tmp_path, content, message):
    write_json(tmp_path / "train.json", content)
    with pytest.raises(DataError, match=message):
        load(task, tmp_path / "train.json")


def test_answer_mismatch_names_the_line_and_the_right_offset(task, tmp_path):
    write_json(tmp_path / "train.json", squad((CONTEXT, [qa("q1", "when", [("7 am", 16)]), qa("q2", "weather", [("cold", 40)])])))
    with pytest.raises(DataError) as caught:
        load(task, tmp_path / "train.json")
    line = next(i for i, text in enumerate((tmp_path / "train.json").read_text().splitlines(), 1) if '"q2"' in text)
    assert f"train.json:{line}: question 'q2'" in caught.value.message
    assert caught.value.hint == "the text occurs at answer_start 47"


def test_malformed_squad_json_names_the_line(task, tmp_path):
    (tmp_path / "train.json").write_text('{"data": [\n{"title": "t",\n "paragraphs": [}\n]}\n')
    with pytest.raises(DataError, match=r"train.json:3: malformed JSON"):
        load(task, tmp_path / "train.json")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "context": "c", "answers": ', r"valid.jsonl:2: malformed JSON"),
        ('{"question": "q", "answers": {"text": [], "answer_start": []}}', r"valid.jsonl:2: missing field 'context'"),
        ('{"question": "", "context": "c", "answers": {"text": ["c"], "answer_start": [0]}}', r"valid.jsonl:2: empty question"),
        ('{"question": "q", "context": "", "answers": {"text": ["c"], "answer_start": [0]}}', r"valid.jsonl:2: empty context"),
        ('{"id": "z", "question": "q", "context": "abc", "answers": {"text": ["c"], "answer_start": [0]}}', r"valid.jsonl:2: question 'z': answer 'c' does not match"),
        ('{"question": "q", "context": "abc", "answers": {"text": ["c"], "answer_start": [0, 1]}}', r"two lists of equal length"),
        ('{"question": "q", "context": "abc", "answers": {"text": [], "answer_start": []}}', r"valid.jsonl:2: question has no answers"),
    ],
)
def test_bad_jsonl_is_located(task, tmp_path, line, message):
    write_json(tmp_path / "train.json", GOOD)
    good = '{"question": "q", "context": "abc", "answers": {"text": ["b"], "answer_start": [1]}}'
    (tmp_path / "valid.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        load(task, tmp_path / "train.json", tmp_path / "valid.jsonl")


def test_unanswerable_questions_need_the_option(task, tmp_path):
    write_json(tmp_path / "train.json", squad((CONTEXT, [qa("q1", "when", [("7 am", 16)]),
                                                       qa("q2", "who", [], is_impossible=True, plausible_answers=[])])))
    loaded = load(task, tmp_path / "train.json", allow_unanswerable=True)
    assert loaded.train[1].answers == () and loaded.train[1].is_unanswerable


def test_format_comes_from_the_extension(task, tmp_path):
    write_json(tmp_path / "train.txt", GOOD)
    with pytest.raises(DataError, match=r"cannot tell the format from the extension '.txt'"):
        load(task, tmp_path / "train.txt")
    loaded = task.load_data(DataSection(train=tmp_path / "train.txt", validation=tmp_path / "train.txt", format="squad"), options(task))
    assert len(loaded.train) == 2


def test_shipped_demo_data_loads_and_every_offset_checks(task):
    loaded = load(task, REPO / "recipes" / "data" / "qa.train.json", REPO / "recipes" / "data" / "qa.valid.json")
    assert len(loaded.train) >= 250 and len(loaded.validation) >= 60
    assert not {e.context for e in loaded.validation} & {e.context for e in loaded.train}


# ------------------------------------------------------------------------------------- encoding

LONG = " ".join(f"the light {i} is {'on' if i % 2 else 'off'}." for i in range(12)) + " the alarm is at 7 am. " + \
       " ".join(f"play song {i}." for i in range(10))


def long_example(task, tmp_path, **opts):
    start = LONG.index("7 am")
    write_json(tmp_path / "train.json", squad((LONG, [qa("q1", "when is the alarm", [("7 am", start)])])))
    return load(task, tmp_path / "train.json", **opts).train


def context_ranges(feature):
    return [o for o in feature["offsets"] if o is not None]


def test_long_context_is_split_into_overlapping_windows(task, tmp_path, tiny_model_dir):
    examples = long_example(task, tmp_path)
    tokenizer = load_tokenizer(tiny_model_dir, 48)
    features = task.encode(examples, tokenizer, [], options(task, stride=8), 48)
    assert len(features) >= 4 and all(f["example_index"] == 0 for f in features)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    question_ids = tokenizer.encode("when is the alarm", add_special_tokens=False).ids
    for feature in features:
        ids, types = feature["input_ids"], feature["token_type_ids"]
        assert len(ids) <= 48 and len(types) == len(ids) == len(feature["offsets"])
        assert ids[: len(question_ids) + 2] == [cls, *question_ids, sep] and ids[-1] == sep
        assert types == [0] * (len(question_ids) + 2) + [1] * (len(ids) - len(question_ids) - 2)
    windows = [context_ranges(f) for f in features]
    overlaps = [len(set(a) & set(b)) for a, b in zip(windows, windows[1:])]
    assert overlaps[:-1] == [8] * (len(overlaps) - 1) and overlaps[-1] >= 8  # the last window ends at the context's end
    assert windows[0][0][0] == 0 and windows[-1][-1][1] == len(LONG)
    covered = sorted({o for w in windows for o in w})
    full = load_tokenizer(tiny_model_dir, 512).encode(LONG, add_special_tokens=False)
    assert covered == [tuple(o) for o in full.offsets]  # every context token is in some window


def test_answer_positions_map_back_to_the_answer_text(task, tmp_path, tiny_model_dir):
    examples = long_example(task, tmp_path)
    features = task.encode(examples, load_tokenizer(tiny_model_dir, 48), [], options(task, stride=8), 48)
    with_answer = [f for f in features if f["start_positions"] != 0]
    assert with_answer, "some window holds the answer"
    for feature in with_answer:
        start, end = feature["offsets"][feature["start_positions"]][0], feature["offsets"][feature["end_positions"]][1]
        assert LONG[start:end] == "7 am"
    assert any(f["start_positions"] == f["end_positions"] == 0 for f in features)  # windows without it point at CLS


def test_unanswerable_targets_point_at_cls_and_unlabelled_have_none(task, tmp_path, tiny_model_dir):
    write_json(tmp_path / "train.json", squad((CONTEXT, [qa("q1", "who", [], is_impossible=True)])))
    examples = load(task, tmp_path / "train.json", allow_unanswerable=True).train
    tokenizer = load_tokenizer(tiny_model_dir, 64)
    (feature,) = task.encode(examples, tokenizer, [], options(task), 64)
    assert feature["start_positions"] == feature["end_positions"] == 0
    unlabelled = task.encode([task.parse_input({"question": "who", "context": CONTEXT})], tokenizer, [], options(task), 64)
    assert "start_positions" not in unlabelled[0]


def test_question_too_long_for_max_length_is_a_located_error(task, tmp_path, tiny_model_dir):
    question = "what is " + "the " * 30 + "alarm"
    write_json(tmp_path / "train.json", squad((CONTEXT, [qa("long-q", question, [("7 am", 16)])])))
    examples = load(task, tmp_path / "train.json").train
    with pytest.raises(DataError, match=r"question 'long-q': the question is 33 tokens long; with model.max_length = 32"):
        task.encode(examples, load_tokenizer(tiny_model_dir, 32), [], options(task), 32)


# ------------------------------------------------------------------------------------- decoding


def logits_for(features, start_char: int, end_char: int, value: float = 8.0):
    """Start/end logits that favour the token span covering [start_char, end_char) wherever it appears."""
    starts, ends = [], []
    for feature in features:
        s, e = np.zeros(len(feature["input_ids"]), dtype=np.float32), np.zeros(len(feature["input_ids"]), dtype=np.float32)
        for i, offset in enumerate(feature["offsets"]):
            if offset is not None and offset[0] == start_char:
                s[i] = value
            if offset is not None and offset[1] == end_char:
                e[i] = value
        starts.append(s)
        ends.append(e)
    return {"start_logits": starts, "end_logits": ends}


def test_decode_picks_the_best_span_across_windows(task, tmp_path, tiny_model_dir):
    examples = long_example(task, tmp_path)
    features = task.encode(examples, load_tokenizer(tiny_model_dir, 48), [], options(task, stride=8), 48)
    start = LONG.index("7 am")
    outputs = logits_for(features, start, start + 4)
    # a weaker candidate in the first window
    outputs["start_logits"][0][features[0]["offsets"].index(next(o for o in features[0]["offsets"] if o))] += 5.0
    (prediction,) = task.decode(outputs, features, examples, [], options(task))
    assert prediction["answer"] == "7 am" and (prediction["start"], prediction["end"]) == (start, start + 4)
    assert 0.0 < prediction["score"] <= 1.0
    assert task.prediction_key(prediction) == "7 am"


def test_decode_respects_max_answer_length_and_context_only(task, tiny_model_dir):
    example = task.parse_input({"question": "when is the alarm", "context": CONTEXT})
    (feature,) = task.encode([example], load_tokenizer(tiny_model_dir, 64), [], options(task), 64)
    offsets = feature["offsets"]
    context_idx = [i for i, o in enumerate(offsets) if o is not None]
    start, end = np.full(len(offsets), -10.0), np.full(len(offsets), -10.0)
    start[1] = end[2] = 50.0  # question tokens: never part of an answer
    start[0] = end[0] = 40.0  # CLS: no null answer without allow_unanswerable
    seven = next(i for i in context_idx if CONTEXT[offsets[i][0]:offsets[i][1]] == "7")
    start[seven] = end[seven + 1] = 12.0  # "7 am": the best valid span (24)
    end[context_idx[-1]] = 25.0  # "7 am ... 6 pm." scores 37 but is longer than max_answer_length = 5
    end[seven - 1] = 30.0  # would end before the start
    outputs = {"start_logits": [start], "end_logits": [end]}
    (prediction,) = task.decode(outputs, [feature], [example], [], options(task, max_answer_length=5))
    assert prediction["answer"] == "7 am" and CONTEXT[prediction["start"]:prediction["end"]] == "7 am"
    (longer,) = task.decode(outputs, [feature], [example], [], options(task, max_answer_length=64))
    assert longer["answer"] == CONTEXT[CONTEXT.index("7 am"):]


def test_null_answer_when_cls_beats_the_best_span_by_the_threshold(task, tiny_model_dir):
    example = task.parse_input({"question": "who", "context": CONTEXT})
    (feature,) = task.encode([example], load_tokenizer(tiny_model_dir, 64), [], options(task), 64)
    first = next(i for i, o in enumerate(feature["offsets"]) if o is not None)
    start, end = np.zeros(len(feature["offsets"])), np.zeros(len(feature["offsets"]))
    start[0] = end[0] = 3.0  # null score 6
    start[first] = end[first] = 2.5  # best span score 5
    outputs = {"start_logits": [start], "end_logits": [end]}
    def decode(**opts):
        return task.decode(outputs, [feature], [example], [], options(task, **opts))[0]
    assert decode()["answer"] == "the"  # v1: never empty
    null = decode(allow_unanswerable=True)
    assert null["answer"] == "" and null["start"] is None and null["end"] is None and 0.0 < null["score"] <= 1.0
    assert decode(allow_unanswerable=True, null_threshold=1.5)["answer"] == "the"


SPACED = "Mei will meet Ana at King's Lane at noon.  The shop on Elm Road opens at 9 am."


@pytest.mark.parametrize("architecture", ["xlm-roberta", "deberta-v3", "modernbert"])
def test_answers_never_start_or_end_with_white_space(task, architecture):
    """Sentencepiece (``▁Lane``) and byte-level BPE (``ĠLane``) tokens carry the space before their word in
    their offsets; the features' offsets, the training targets and the decoded answers do not."""
    from assistant_builder.conformance.tiny_architectures import train_tokenizer
    from assistant_builder.tokenization import prepare_tokenizer
    from assistant_builder_tasks.qa.data import Answer, QAExample

    tokenizer = prepare_tokenizer(train_tokenizer(architecture), 64)
    raw = tokenizer.encode("where", SPACED)
    assert any(SPACED[s:e] != SPACED[s:e].strip() for (s, e), q in zip(raw.offsets, raw.sequence_ids) if q == 1)  # the cause
    answer = "King's Lane"
    start = SPACED.index(answer)
    example = QAExample("Where will Mei meet Ana?", SPACED, (Answer(answer, start),))
    (feature,) = task.encode([example], tokenizer, [], options(task), 64)
    for offset in feature["offsets"]:
        if offset is not None:
            text = SPACED[offset[0]:offset[1]]
            assert text == text.strip() != "", offset
    target = SPACED[feature["offsets"][feature["start_positions"]][0]:feature["offsets"][feature["end_positions"]][1]]
    assert target == answer
    outputs = logits_for([feature], start, start + len(answer))
    assert max(outputs["start_logits"][0]) > 0 and max(outputs["end_logits"][0]) > 0
    (prediction,) = task.decode(outputs, [feature], [example], [], options(task))
    assert prediction["answer"] == answer and (prediction["start"], prediction["end"]) == (start, start + len(answer))


def test_decide_trims_a_span_with_white_space_at_either_end():
    from assistant_builder_tasks.qa.decoding import Candidates, Span, decide

    start = SPACED.index("King's Lane")
    prediction = decide(Candidates((Span(start - 1, start + len("King's Lane") + 1, 3.0),), 0.0), SPACED, False, 0.0)
    assert prediction["answer"] == "King's Lane" == SPACED[prediction["start"]:prediction["end"]]


# -------------------------------------------------------------------------------------- metrics


def test_normalize_answer_like_the_official_script():
    from assistant_builder_tasks.qa.metrics import normalize_answer

    assert normalize_answer("The  Cat's Hat!") == "cats hat"
    assert normalize_answer("an apple, a pear and the plum") == "apple pear and plum"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("A") == ""


def test_exact_match_and_f1_on_hand_computed_cases():
    from assistant_builder_tasks.qa.metrics import exact_match_score, f1_score, score_question

    assert exact_match_score("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert f1_score("the red house", "red brick house") == pytest.approx(0.8)  # P=2/2, R=2/3
    assert f1_score("red red house", "red house") == pytest.approx(0.8)  # P=2/3, R=2/2 (counts clipped)
    assert f1_score("blue", "red house") == 0.0
    assert f1_score("", "red") == 0.0
    assert score_question("at 7 am", ["7 am", "seven in the morning"]) == (0.0, pytest.approx(0.8))
    assert score_question("7 am", ["7 am", "seven"]) == (1.0, 1.0)  # max over golds
    assert score_question("", []) == (1.0, 1.0) and score_question("the", []) == (1.0, 1.0)
    assert score_question("7 am", []) == (0.0, 0.0)


def test_evaluate_reports_em_f1_breakdown_and_worst_answers(task):
    from assistant_builder_tasks.qa.data import Answer, QAExample

    examples = [QAExample("q1", "c", (Answer("red brick house", 0),), "a"), QAExample("q2", "c", (Answer("7 am", 0),), "b"),
                QAExample("q3", "c", (), "c"), QAExample("q4", "c", (), "d")]
    predictions = [{"answer": "the red house", "score": 0.9}, {"answer": "7 am", "score": 0.8},
                   {"answer": "", "score": 0.7}, {"answer": "mom", "score": 0.6}]
    evaluation = task.evaluate(predictions, examples, [])
    m = evaluation.metrics
    assert m["exact_match"] == pytest.approx(0.5) and m["f1"] == pytest.approx((0.8 + 1 + 1 + 0) / 4)
    assert m["has_ans_exact_match"] == pytest.approx(0.5) and m["has_ans_f1"] == pytest.approx(0.9)
    assert m["no_ans_exact_match"] == pytest.approx(0.5) and m["no_ans_f1"] == pytest.approx(0.5)
    assert set(m) <= set(task.metric_names)
    assert [w["id"] for w in evaluation.details["worst"]] == ["d", "a"]
    assert evaluation.report.startswith("# Question answering report") and "| q4 | (no answer) | mom |" in evaluation.report
    v1 = task.evaluate(predictions[:2], examples[:2], [])
    assert set(v1.metrics) == {"exact_match", "f1"}


def test_parse_input_names_the_missing_field(task):
    example = task.parse_input({"question": " when? ", "context": "at 7", "id": 3})
    assert (example.question, example.context, example.answers, example.id) == ("when?", "at 7", None, "3")
    with pytest.raises(DataError, match="missing field 'context'"):
        task.parse_input({"question": "when?"})
    with pytest.raises(DataError, match="missing field 'question'"):
        task.parse_input({"context": "at 7"})
    with pytest.raises(DataError, match="field 'context' must be a non-empty string"):
        task.parse_input({"question": "when?", "context": " "})
    with pytest.raises(DataError, match='expected an object with "question" and "context"'):
        task.parse_input("when?")


# ---------------------------------------------------------------------------------------- model


def test_model_forward_loss_and_save_load_round_trip(task, tiny_model_dir, tmp_path):
    import torch

    example = task.parse_input({"question": "when is the alarm", "context": CONTEXT})
    from assistant_builder_tasks.qa.data import Answer

    labelled = [example.__class__(example.question, CONTEXT, (Answer("7 am", 16),)), example]
    features = task.encode(labelled, load_tokenizer(tiny_model_dir, 64), [], options(task), 64)
    model = task.build_model(tiny_model_dir, [], options(task))
    assert model.head_modules == ("qa_outputs",)
    batch = task.collate(features[:1], 0)
    assert batch["start_positions"].shape == (1,) and int(batch["start_positions"][0]) > 0
    out = model(**batch)
    assert out["start_logits"].shape == batch["input_ids"].shape and torch.isfinite(out["loss"])
    unlabelled = task.collate(features, 0)
    assert "start_positions" not in unlabelled
    task.save_model(model, tmp_path / "model", [])
    again = task.load_model(tmp_path / "model")
    model.eval()
    with torch.no_grad():
        a, b = model(**unlabelled), again(**unlabelled)
    assert torch.allclose(a["end_logits"], b["end_logits"], atol=1e-6)


# ---------------------------------------------------------------------------- real data (slow)

XQUAD = Path("/work/shared/data/xquad_en/xquad.en.json")


@pytest.mark.slow
@pytest.mark.skipif(not XQUAD.is_file(), reason="shared XQuAD-en data not present")
def test_xquad_gold_spans_survive_windowing_and_decoding(task):
    """Oracle logits at the gold tokens decode back to (nearly) every XQuAD answer, through windows of 128 tokens."""
    from assistant_builder.basemodels import resolve_base_model

    try:
        tokenizer = load_tokenizer(resolve_base_model("minilm-l6"), 128)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"bundled MiniLM not available: {exc}")
    examples = load(task, XQUAD).train
    assert len(examples) == 1190
    features = task.encode(examples, tokenizer, [], options(task, stride=32), 128)
    assert len(features) > len(examples)  # long paragraphs were windowed
    outputs = {"start_logits": [], "end_logits": []}
    for feature in features:
        s, e = np.zeros(len(feature["input_ids"])), np.zeros(len(feature["input_ids"]))
        s[feature["start_positions"]] = e[feature["end_positions"]] = 10.0
        outputs["start_logits"].append(s)
        outputs["end_logits"].append(e)
    predictions = task.decode(outputs, features, examples, [], options(task, max_answer_length=64))
    metrics = task.evaluate(predictions, examples, []).metrics
    assert metrics["exact_match"] > 0.98 and metrics["f1"] > 0.99, metrics
