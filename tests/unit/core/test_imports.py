"""Import paths: both forms resolve; each way of failing says what failed and how to fix it."""

from __future__ import annotations

import collections
import json
import os.path
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gristmill.core.imports import import_object, split_import_path
from gristmill.errors import ConfigError, MissingExtraError

MODULES = {
    "gm_imports_needs_dep": "import gm_imports_absent_dependency\n",
    "gm_imports_bad_name": "from json import no_such_name\n",
    "gm_imports_raises": "raise RuntimeError('the database is not configured')\n",
    "gm_imports_fine": "class Thing:\n    class Inner:\n        pass\n\nvalue = 3\n",
}


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("json:dumps", json.dumps),
        ("json.dumps", json.dumps),
        ("os.path:join", os.path.join),
        ("os.path.join", os.path.join),
        ("collections:OrderedDict.fromkeys", collections.OrderedDict.fromkeys),
    ],
)
def test_both_forms_resolve(path: str, expected: object) -> None:
    assert import_object(path, what="thing") == expected


def test_a_nested_attribute_by_the_colon_form(modules: None) -> None:
    found = import_object("gm_imports_fine:Thing.Inner", what="thing", kind="class")
    assert found.__qualname__ == "Thing.Inner"


identifier = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)


@given(module=st.lists(identifier, min_size=1, max_size=3), attribute=identifier)
def test_the_two_forms_of_one_object_split_alike(module: list[str], attribute: str) -> None:
    dotted = ".".join(module)
    expected = (dotted, (attribute,))
    assert split_import_path(f"{dotted}:{attribute}") == expected
    assert split_import_path(f"{dotted}.{attribute}") == expected


@pytest.mark.parametrize(
    "path", ["json", "json:", ":dumps", "json:dumps:x", "my-pkg:Thing", "json: dumps", "", "a..b"]
)
def test_a_malformed_path_shows_both_forms_and_the_hint(path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        import_object(path, what="evaluator", kind="function", hint="name a metric function")
    assert str(caught.value) == (
        f"evaluator {path!r} is not an import path; write it as "
        "'package.module:function' or 'package.module.function'; name a metric function"
    )


def test_a_module_that_does_not_exist() -> None:
    with pytest.raises(ConfigError) as caught:
        import_object("gm_no_such_package.models:Thing", what="algorithm", hint="unused here")
    message = str(caught.value)
    assert message == (
        "cannot import algorithm 'gm_no_such_package.models:Thing': no module named "
        "'gm_no_such_package'; check the spelling, and that the package providing it is "
        "installed in this environment"
    )
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_a_misspelt_submodule_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"no module named 'json\.decodr' \(did you mean "):
        import_object("json.decodr:JSONDecoder", what="thing")


def test_a_module_whose_dependency_is_missing_names_the_dependency(modules: None) -> None:
    with pytest.raises(ConfigError) as caught:
        import_object("gm_imports_needs_dep:Thing", what="feature step")
    assert str(caught.value) == (
        "cannot import feature step 'gm_imports_needs_dep:Thing': module "
        "'gm_imports_needs_dep' needs 'gm_imports_absent_dependency', which is not installed; "
        "install the package that provides 'gm_imports_absent_dependency'"
    )


@pytest.mark.parametrize(
    ("path", "missing"),
    [
        ("gm_no_such_package:Thing", "gm_no_such_package"),
        ("gm_imports_needs_dep:Thing", "gm_imports_absent_dependency"),
    ],
)
def test_with_an_install_command_a_missing_package_is_a_missing_extra(
    path: str, missing: str, modules: None
) -> None:
    with pytest.raises(MissingExtraError) as caught:
        import_object(path, what="redis bus backend", install="pip install 'gristmill[redis]'")
    assert str(caught.value) == (
        f"redis bus backend {path!r} needs the {missing} package, which is not installed; "
        "install it with: pip install 'gristmill[redis]'"
    )
    assert not isinstance(caught.value, ConfigError)


def test_a_module_that_fails_to_import_says_why(modules: None) -> None:
    with pytest.raises(ConfigError, match=r"importing 'gm_imports_bad_name' failed: cannot import"):
        import_object("gm_imports_bad_name:x", what="thing")
    with pytest.raises(ConfigError) as caught:
        import_object("gm_imports_raises.x", what="custom split", install="pip install x")
    assert str(caught.value) == (
        "cannot import custom split 'gm_imports_raises.x': module 'gm_imports_raises' raised "
        "RuntimeError while being imported: the database is not configured"
    )
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_missing_attribute_names_the_module_and_a_close_match() -> None:
    with pytest.raises(ConfigError) as caught:
        import_object("json:JSONDecodr", what="evaluator", kind="function", hint="name a metric")
    assert str(caught.value) == (
        "cannot import evaluator 'json:JSONDecodr': module 'json' has no function 'JSONDecodr' "
        "(did you mean 'JSONDecoder'?); name a metric"
    )
    with pytest.raises(ConfigError, match=r"module 'json' has no 'zzz'$"):
        import_object("json.zzz", what="thing")


def test_a_missing_nested_attribute_names_its_owner(modules: None) -> None:
    with pytest.raises(ConfigError) as caught:
        import_object("gm_imports_fine:Thing.Iner", what="thing", kind="class")
    assert str(caught.value) == (
        "cannot import thing 'gm_imports_fine:Thing.Iner': 'gm_imports_fine:Thing' has no "
        "class 'Iner' (did you mean 'Inner'?)"
    )
    with pytest.raises(ConfigError, match=r"module 'gm_imports_fine' has no 'Thng' \(did you"):
        import_object("gm_imports_fine:Thng.Inner", what="thing", kind="class")
