"""The package's own face (webhooks/__init__.py): each name of ``__all__`` is one module's,
and none of those modules is loaded before a name of it is asked for."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import sessionstore.webhooks as webhooks
from tests.webhooks.helpers import none_loaded, run_fresh

MODULES = ("signing", "destinations", "registry", "delivery")


def module(name: str) -> ModuleType:
    return importlib.import_module(f"sessionstore.webhooks.{name}")


@pytest.mark.parametrize("name", webhooks.__all__)
def test_every_name_is_one_modules_own(name: str) -> None:
    (home,) = [each for each in MODULES if name in module(each).__all__]
    assert getattr(webhooks, name) is getattr(module(home), name)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_what_it_exports(name: str) -> None:
    assert all(hasattr(module(name), each) for each in module(name).__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        webhooks.Nothing  # noqa: B018


def test_importing_the_package_loads_none_of_its_modules() -> None:
    names = tuple(f"sessionstore.webhooks.{each}" for each in MODULES)
    run_fresh("import sys\nimport sessionstore.webhooks\n" + none_loaded((*names, "httpx")))
