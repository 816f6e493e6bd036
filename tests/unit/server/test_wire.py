"""Wire codecs of the protocols: OIP tensors (JSON and binary, checked against tritonclient's
own codec) and tabular bodies (rows, records, CSV) to typed columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from gristmill.errors import DataError
from gristmill.servables import InputColumn, Predictions, ServableManifest
from gristmill.server.protocols.errors import RequestError, status_of
from gristmill.server.protocols.frames import from_csv, from_records, from_rows
from gristmill.server.protocols.tensors import (
    binary_data,
    from_binary,
    from_json,
    outputs_of,
    pack_texts,
    parse_tensor,
    value_datatype,
)

TEXT = InputColumn("city", "string")
NUMBER = InputColumn("income", "float64")
COUNT = InputColumn("visits", "int64")
FLAG = InputColumn("member", "bool")


def _manifest(**changes: Any) -> ServableManifest:
    base: dict[str, Any] = {
        "model": "churn",
        "version": 2,
        "kind": "onnx",
        "reason": "",
        "digest": "sha256:x",
        "bundle": "sha256:y",
        "pipeline": None,
        "task": "classification",
        "output": "probabilities",
        "inputs": (TEXT, NUMBER, COUNT, FLAG),
        "classes": ("no", "yes"),
    }
    return ServableManifest(**(base | changes))


def _tensor(name: str, datatype: str, shape: list[int], **rest: Any) -> Any:
    return parse_tensor({"name": name, "datatype": datatype, "shape": shape, **rest}, 0)


def _binary(name: str, datatype: str, shape: list[int]) -> Any:
    return _tensor(name, datatype, shape, parameters={"binary_data_size": 0})


def test_bytes_elements_are_what_tritonclient_writes_and_reads() -> None:
    texts = ["Lyon", "", "Zürich"]
    raw = serialize_byte_tensor(np.array([t.encode() for t in texts], dtype=object)).item()
    assert pack_texts(texts) == raw
    column = from_binary(_binary("city", "BYTES", [3]), memoryview(raw), TEXT)
    assert list(column) == ["Lyon", None, "Zürich"]  # an empty text is a missing one
    decoded = deserialize_bytes_tensor(pack_texts(np.array(["a", "bé"], dtype=object)))
    assert list(decoded) == [b"a", "bé".encode()]


def test_binary_numbers_and_booleans() -> None:
    values = np.array([1.5, np.nan, -2.0])
    column = from_binary(_binary("income", "FP64", [3, 1]), memoryview(values.tobytes()), NUMBER)
    np.testing.assert_array_equal(column, values)
    narrow = np.array([1, 2, 3], dtype=np.int32).tobytes()
    counts = from_binary(_binary("visits", "INT32", [3]), memoryview(narrow), COUNT)
    assert counts.dtype == np.int64 and list(counts) == [1, 2, 3]
    flags = from_binary(_binary("member", "BOOL", [3]), memoryview(b"\x01\x00\x01"), FLAG)
    assert flags.tolist() == [True, False, True]
    with pytest.raises(RequestError, match=r"'income' has 16 bytes .* takes 24"):
        from_binary(_binary("income", "FP64", [3]), memoryview(values.tobytes()[:16]), NUMBER)
    with pytest.raises(RequestError, match=r"'visits' has datatype FP64; .* INT64"):
        from_binary(_binary("visits", "FP64", [3]), memoryview(values.tobytes()), COUNT)
    with pytest.raises(RequestError, match="element 1 says 9 bytes"):
        from_binary(_binary("city", "BYTES", [2]), memoryview(b"\0\0\0\0\x09\0\0\0ab"), TEXT)
    with pytest.raises(RequestError, match=r"2 byte\(s\) of binary data follow"):
        from_binary(_binary("city", "BYTES", [1]), memoryview(b"\x01\0\0\0abc"), TEXT)
    with pytest.raises(RequestError, match="element 0 is not UTF-8"):
        from_binary(_binary("city", "BYTES", [1]), memoryview(b"\x01\0\0\0\xff"), TEXT)


def test_json_tensors_are_typed_and_checked() -> None:
    nested = from_json(_tensor("income", "FP64", [2, 1], data=[[1], [None]]), NUMBER)
    assert nested.dtype == np.float64 and nested[0] == 1.0 and np.isnan(nested[1])
    assert from_json(_tensor("visits", "INT64", [2], data=[3, 4.0]), COUNT).tolist() == [3, 4]
    flags = from_json(_tensor("member", "BOOL", [2], data=[True, False]), FLAG)
    assert flags.tolist() == [True, False]
    texts = from_json(_tensor("city", "BYTES", [3], data=["a", None, ""]), TEXT)
    assert texts.tolist() == ["a", None, None]
    refusals = [
        (_tensor("income", "FP64", [2], data=["1", "2"]), NUMBER, "must be numbers"),
        (_tensor("income", "FP64", [2], data=[True, None]), NUMBER, "must be numbers"),
        (_tensor("visits", "INT64", [1], data=[1.5]), COUNT, "whole numbers"),
        (_tensor("member", "BOOL", [1], data=[2]), FLAG, "true or false"),
        (_tensor("city", "BYTES", [1], data=[3]), TEXT, "must be strings"),
        (_tensor("city", "FP64", [1], data=[3]), TEXT, "datatype FP64; .* BYTES"),
        (_tensor("income", "FP64", [3], data=[1, 2]), NUMBER, "2 value\\(s\\); its shape"),
        (_tensor("income", "FP64", [2], data=[[1, 2], [3]]), NUMBER, "not a list of shape"),
    ]
    for tensor, column, message in refusals:
        with pytest.raises(RequestError, match=message) as refused:
            from_json(tensor, column)
        assert refused.value.column == tensor.name and status_of(refused.value) == 400
    for bad, message in [
        ({"datatype": "FP64", "shape": [1], "data": [1]}, "has no 'name'"),
        ({"name": "x", "shape": [1], "data": [1]}, "no 'datatype'"),
        ({"name": "x", "datatype": "FP64", "shape": [2, 3], "data": []}, "shape \\[rows\\]"),
        ({"name": "x", "datatype": "FP64", "shape": "3", "data": []}, "needs a 'shape'"),
        ({"name": "x", "datatype": "FP64", "shape": [1]}, "no 'data'"),
    ]:
        with pytest.raises(RequestError, match=message):
            parse_tensor(bad, 0)


def test_outputs_follow_the_manifest() -> None:
    manifest = _manifest()
    assert value_datatype(manifest) == "BYTES"
    assert value_datatype(_manifest(classes=(0, 1))) == "INT64"
    assert value_datatype(_manifest(classes=None, output="number", task="regression")) == "FP64"
    assert value_datatype(_manifest(classes=None, output="cluster", task="clustering")) == "INT64"
    answer = Predictions(
        np.array(["yes", None, "no"], dtype=object),
        np.array([[0.2, 0.8], [np.nan, np.nan], [0.9, 0.1]]),
        np.array([False, True, False]),
    )
    outputs = outputs_of(manifest, answer)
    assert list(outputs) == ["predict", "predict_proba", "rejected"]
    assert outputs["predict"].values.tolist() == ["yes", "", "no"]
    assert outputs["predict_proba"].shape == [3, 2]
    assert binary_data(outputs["rejected"]) == b"\x00\x01\x00"
    assert list(deserialize_bytes_tensor(binary_data(outputs["predict"]))) == [b"yes", b"", b"no"]
    assert len(binary_data(outputs["predict_proba"])) == 6 * 8


def test_tables_to_typed_columns() -> None:
    manifest = _manifest()
    rows = from_rows(
        [["Lyon", 1.5, 3, True], [None, None, 4, False]],
        ["city", "income", "visits", "member"],
        manifest,
        "data",
    )
    assert rows["city"].tolist() == ["Lyon", None]
    assert rows["income"][0] == 1.5 and np.isnan(rows["income"][1])
    assert rows["member"].tolist() == [1.0, 0.0]
    records = from_records(
        [{"city": "Lyon", "income": 2, "visits": 1, "member": True, "extra": 1}, {"city": "7"}],
        manifest,
        "dataframe_records",
    )
    assert records["city"].tolist() == ["Lyon", "7"] and np.isnan(records["visits"][1])
    with pytest.raises(DataError, match=r"column 'city' takes text .*row 1 holds 7") as text:
        from_records(
            [{"city": "Lyon", "income": 1, "visits": 1, "member": True}, {"city": 7}],
            manifest,
            "dataframe_records",
        )
    assert (text.value.column, text.value.row) == ("city", 1)
    with pytest.raises(DataError, match=r"column 'income' takes numbers.*row 0 holds True"):
        from_records([{"city": "a", "income": True, "visits": 1, "member": True}], manifest, "r")
    csv = b"visits,city,income,member,extra\n3,Lyon,1.5,true,x\n,,,,\n"
    columns = from_csv(csv, manifest)
    assert columns["city"].tolist() == ["Lyon", None]
    assert columns["visits"][0] == 3 and np.isnan(columns["visits"][1])
    assert columns["member"][0] == 1.0
    with pytest.raises(DataError, match=r"CSV column 'income' takes numbers.*row 1 \(line 3\)"):
        from_csv(b"city,income,visits,member\nLyon,1.5,1,true\nLyon,rich,1,true\n", manifest)
    with pytest.raises(DataError, match=r"CSV column 'member' takes true or false.*row 0 holds"):
        from_csv(b'city,income,visits,member\n"Lyon",1.5,1,maybe\n', manifest)  # quoted: no line
    with pytest.raises(RequestError, match=r"column 'member' is missing.*: extra"):
        from_records([{"city": "a", "income": 1, "visits": 1, "extra": 1}], manifest, "r")
    with pytest.raises(DataError, match=r"column 'income' takes numbers.*row 1 holds 'lots'"):
        from_rows([["a", 1, 1, True], ["b", "lots", 1, True]], list(records), manifest, "d")
