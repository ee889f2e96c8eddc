"""Record sources: Parquet files, folders of data files and saved Hugging Face datasets read as rows
with their location; ClassLabel columns decoded to names; bad sources named in the error."""

from __future__ import annotations

import json

import pytest

from assistant_builder.datasources import detect_record_format, is_saved_dataset, read_records
from assistant_builder.errors import DataError

datasets = pytest.importorskip("datasets", reason="the data extra is installed by `make test`")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def save_intents(path):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["greet", "bye"])})
    splits = {
        "train": datasets.Dataset.from_dict({"text": ["hi there", "bye now", "hello"], "label": [0, 1, 0]}, features=features),
        "validation": datasets.Dataset.from_dict({"text": ["see you"], "label": [1]}, features=features),
    }
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def test_saved_dataset_dict_rows_with_decoded_labels_and_locations(tmp_path):
    path = save_intents(tmp_path / "intents")
    assert is_saved_dataset(path) and detect_record_format(path) == "hf_disk"
    records = list(read_records(path, split="train"))
    assert [r.row for r in records] == [{"text": "hi there", "label": "greet"}, {"text": "bye now", "label": "bye"},
                                        {"text": "hello", "label": "greet"}]
    assert [r.where for r in records] == [f"{path}[train]:{n}" for n in (1, 2, 3)]
    assert [r.row["label"] for r in read_records(path, split="validation")] == ["bye"]


def test_missing_split_lists_the_available_ones(tmp_path):
    path = save_intents(tmp_path / "intents")
    with pytest.raises(DataError, match=r"has no split 'dev'; it has: train, validation") as caught:
        list(read_records(path, split="dev"))
    assert "data.dataset_validation_split" in caught.value.hint


def test_single_saved_dataset_and_sequence_of_class_labels(tmp_path):
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-city", "I-city"]))})
    datasets.Dataset.from_dict({"tokens": [["to", "new", "york"]], "ner_tags": [[0, 1, 2]]}, features=features).save_to_disk(str(tmp_path / "ds"))
    (record,) = read_records(tmp_path / "ds")
    assert record.row == {"tokens": ["to", "new", "york"], "ner_tags": ["O", "B-city", "I-city"]}
    assert record.where == f"{tmp_path / 'ds'}:1"


def test_folder_of_jsonl_csv_and_parquet_files_in_name_order(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps({"text": "one", "label": "x"}) + "\n\n" + json.dumps({"text": "two", "label": "y"}) + "\n")
    (folder / "b.csv").write_text("text,label\nthree,x\n")
    pq.write_table(pa.table({"text": ["four"], "label": ["y"]}), folder / "c.parquet")
    (folder / "notes.md").write_text("not data")
    assert detect_record_format(folder) == "files"
    records = list(read_records(folder))
    assert [r.row["text"] for r in records] == ["one", "two", "three", "four"]
    assert [r.where for r in records] == [f"{folder / 'a.jsonl'}:1", f"{folder / 'a.jsonl'}:3", f"{folder / 'b.csv'}:2",
                                          f"{folder / 'c.parquet'}:1"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: (p / "empty").mkdir(), r"empty: folder holds no data files"),
        (lambda p: (p / "bad.parquet").write_bytes(b"not parquet"), r"bad.parquet: not a readable Parquet file"),
        (lambda p: (p / "x.yaml").write_text("a: 1"), r"x.yaml: cannot tell the format from the extension '.yaml'"),
        (lambda p: (p / "bad.jsonl").write_text('{"a": 1}\n[1]\n'), r"bad.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_bad_sources_are_named(tmp_path, setup, message):
    setup(tmp_path)
    target = next(p for p in tmp_path.iterdir())
    with pytest.raises(DataError, match=message):
        list(read_records(target))


def test_damaged_saved_dataset(tmp_path):
    path = save_intents(tmp_path / "intents")
    for arrow in path.rglob("*.arrow"):
        arrow.write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"intents: cannot be loaded with datasets.load_from_disk \(ArrowInvalid"):
        list(read_records(path, split="train"))
