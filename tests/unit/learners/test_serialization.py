"""Fitted learners are stored with skops and loaded only when every type is trusted."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio

from gristmill.errors import DataError
from gristmill.learners import make_learner
from gristmill.learners import serialization as ser

from .conftest import PENGUIN_NUMBERS


def test_estimator_types_are_trusted_by_module(penguins: pd.DataFrame) -> None:
    model = make_learner("gradient_boosting", {"max_iter": 10}, task="classification").fit(
        penguins[PENGUIN_NUMBERS], penguins["species"]
    )
    data = ser.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert all(name.startswith(("sklearn.", "gristmill.")) for name in untrusted)
    assert ser.loads(data).classes == ["Adelie", "Chinstrap", "Gentoo"]


def test_a_third_party_type_is_refused_until_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gm_ser_models.py").write_text(
        textwrap.dedent(
            """
            from sklearn.linear_model import LinearRegression

            class MyRegression(LinearRegression):
                pass
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    y = pd.Series([2.0, 4.0, 6.0, 8.0], name="y")
    model = make_learner("gm_ser_models:MyRegression", {}).fit(frame, y)
    data = ser.dumps(model)
    with pytest.raises(DataError) as caught:
        ser.loads(data)
    assert "untrusted types: gm_ser_models.MyRegression" in str(caught.value)
    assert "also_trust" in str(caught.value)
    assert ser.trusted_packages(["gm_ser_models:MyRegression", "ridge"]) == ["gm_ser_models"]
    loaded = ser.loads(data, also_trust=ser.trusted_packages(["gm_ser_models:MyRegression"]))
    assert loaded.predict(frame).tolist() == pytest.approx([2.0, 4.0, 6.0, 8.0])
    sys.modules.pop("gm_ser_models", None)


def test_only_packages_named_by_import_path_and_not_trusted_yet_are_added() -> None:
    names = ["random_forest", "sklearn.svm:SVC", "mypkg.models.Mine", "other:Est", "x:y:z"]
    assert ser.trusted_packages(names) == ["mypkg", "other"]


def test_bytes_that_are_not_a_learner_are_data_errors() -> None:
    with pytest.raises(DataError, match="not a stored learner"):
        ser.loads(b"not a zip file")
    with pytest.raises(DataError, match="hold a dict, not a fitted learner"):
        ser.loads(sio.dumps({"a": 1}))
