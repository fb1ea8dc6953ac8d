"""The conformance suite every backend plugin runs against itself.

Subclass :class:`BackendConformance` in the plugin's tests, set ``backend_name`` and
``formats``, and implement the four fixtures. Each test below then runs against the real
backend, found through the ``hubcore`` entry point exactly as users get it. The suite uses
hubcore's fixtures (``hub_home``), so the plugin's ``conftest.py`` loads them with
``pytest_plugins = ["hubcore.testing.pytest_plugin"]``::

    class TestMyBackend(BackendConformance):
        backend_name = "mine"
        formats = (".safetensors", ".bin")

        @pytest.fixture
        def model_source(self):          # a module defining build(seed) -> model
            return "def build(seed=0): ..."

        @pytest.fixture
        def other_model(self):           # a model of a different architecture
            ...

        @pytest.fixture
        def save_weights(self):          # (model, path) -> writes the model's weights
            ...

        @pytest.fixture
        def to_numpy(self):              # model -> {name: numpy array}
            ...

Four capabilities are tested only when the backend declares them (class attributes of the
backend, see :class:`hubcore.plugins.backends.Backend`):

* ``functional = True``: ``apply_weights`` returns a new model and leaves the one it is
  given unchanged; ``@pretrained`` entrypoints then return that new model. A backend without
  it must return ``None`` (or the model itself).
* ``model_formats`` with ``open_model``: every declared suffix round-trips through
  :func:`hubcore.plugins.model_files.open_model_file`. Provide a ``save_model`` fixture,
  ``(model, path) -> None`` writing the whole model in the format the suffix names, and
  override :meth:`BackendConformance.assert_same_model` if ``to_numpy`` cannot read an
  opened model.
* ``export_weights`` (:class:`hubcore.plugins.backends.WeightsExporter`): a model saved as a package
  (:func:`hubcore.save_pretrained`, in one file and in shards) loads back with the same
  parameters, and the files are valid safetensors.
* ``building_for_weights`` with ``assign_weights``
  (:class:`hubcore.plugins.backends.WeightAssigner`): a model built in the context and
  assigned a file equals the saved model, and weights that do not fit are refused (the
  mismatch error, or ``PlainPathNeeded``).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hubcore
from hubcore.errors import IntegrityError, WeightsFormatError, WeightsMismatchError
from hubcore.plugins import get_plugins, load_plugins
from hubcore.plugins.backends import (
    Backend,
    PlainPathNeeded,
    assigns_weights,
    exporter_of,
    is_functional,
    model_formats,
)
from hubcore.plugins.model_files import open_model_file
from hubcore.testing.files import write_repo

__all__ = ["BackendConformance"]

Model = Any

#: One float32 tensor ``a`` of two elements, as a safetensors header entry.
_TENSOR = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


class BackendConformance:
    """Contract tests for a backend; see the module docstring for how to use them."""

    #: The name the backend registers under.
    backend_name: str = ""
    #: Weight file suffixes the backend reads; each is tested.
    formats: tuple[str, ...] = (".safetensors",)

    # -- fixtures the plugin provides --------------------------------------------------------
    @pytest.fixture
    def model_source(self) -> str:
        """Python source of a module defining ``build(seed=0)`` that returns a small model."""
        raise NotImplementedError("provide the model_source fixture")

    @pytest.fixture
    def other_model(self) -> Model:
        """A model whose parameters differ in names or shapes from ``build()``'s."""
        raise NotImplementedError("provide the other_model fixture")

    @pytest.fixture
    def save_weights(self) -> Callable[[Model, Path], None]:
        """A function writing a model's weights to a path, in the format its suffix names."""
        raise NotImplementedError("provide the save_weights fixture")

    @pytest.fixture
    def to_numpy(self) -> Callable[[Model], dict[str, Any]]:
        """A function returning a model's parameters as ``{name: numpy array}``."""
        raise NotImplementedError("provide the to_numpy fixture")

    @pytest.fixture
    def save_model(self, backend: Backend) -> Callable[[Model, Path], None]:
        """For backends with ``model_formats``: write a whole model to a path, in the format
        its suffix names."""
        self.opened_formats(backend)  # skips the test for a backend that opens no models
        raise NotImplementedError("provide the save_model fixture (the backend opens models)")

    # -- helpers ----------------------------------------------------------------------------
    @pytest.fixture
    def build(self, model_source: str, tmp_path: Path) -> Iterator[Callable[..., Model]]:
        """``build(seed)`` from :meth:`model_source`, imported as a plain module."""
        path = write_repo(tmp_path / "model-src", {"conformance_net.py": model_source})
        spec = importlib.util.spec_from_file_location(
            "_hubcore_conformance_net", path / "conformance_net.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module.build
        sys.modules.pop("_hubcore_conformance_net", None)

    @pytest.fixture
    def backend(self, hub_home: Path) -> Backend:
        return get_plugins().backend_named(self.backend_name)

    def assert_same(self, to_numpy: Callable[[Model], dict[str, Any]], a: Model, b: Model) -> None:
        import numpy as np

        left, right = to_numpy(a), to_numpy(b)
        assert left.keys() == right.keys()
        for key in left:
            np.testing.assert_array_equal(left[key], right[key], err_msg=key)

    def assert_same_model(
        self, to_numpy: Callable[[Model], dict[str, Any]], expected: Model, opened: Any
    ) -> None:
        """Assert that *opened*, a model read from a model file, is the model *expected*."""
        self.assert_same(to_numpy, expected, opened)

    @staticmethod
    def apply(backend: Backend, model: Model, state: Any, *, strict: bool) -> Model:
        """Apply *state* as hubcore does: the model that carries the weights afterwards."""
        applied = backend.apply_weights(model, state, strict=strict)
        return model if applied is None else applied

    def make_repo(
        self,
        root: Path,
        model_source: str,
        weights: Path,
        sha256: str | None,
        returns: str = "_build(seed)",
    ) -> Path:
        """A repository whose entrypoint ``model(seed)`` returns *returns* (an expression
        of ``_build(seed)``) with *weights* declared through ``@pretrained``."""
        sha = f", sha256={sha256!r}" if sha256 else ""
        hubconf = f"""
            import collections

            from hubcore import pretrained
            from net import build as _build

            dependencies = []
            _Loaded = collections.namedtuple("Loaded", "head model tail")

            @pretrained({weights.name!r}{sha})
            def model(seed: int = 0):
                '''The conformance model.'''
                return {returns}
        """
        return write_repo(root, {"net.py": model_source, "hubconf.py": textwrap.dedent(hubconf)})

    # -- the contract -----------------------------------------------------------------------
    def test_found_through_entry_point(self, hub_home: Path) -> None:
        plugins = load_plugins()
        assert self.backend_name in plugins.backends
        owner = next(i for i in plugins.infos.values() if self.backend_name in i.backends)
        assert owner.distribution, "the backend must come from an installed distribution"
        assert not owner.builtin

    def test_recognizes_only_its_models(
        self, backend: Backend, build: Callable[..., Model]
    ) -> None:
        assert backend.recognizes(build(0))
        for foreign in (object(), {}, None, [1, 2], "model"):
            assert not backend.recognizes(foreign)

    def test_summarize_counts_parameters(
        self, backend: Backend, build: Callable[..., Model]
    ) -> None:
        summary = backend.summarize(build(0))
        assert isinstance(summary["parameters"], int)
        assert summary["parameters"] > 0

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "weight_suffix" in metafunc.fixturenames:
            metafunc.parametrize("weight_suffix", self.formats)

    def test_weights_round_trip(
        self,
        weight_suffix: str,
        backend: Backend,
        build: Callable[..., Model],
        save_weights: Callable[[Model, Path], None],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        source, target = build(1), build(2)
        path = tmp_path / f"weights{weight_suffix}"
        save_weights(source, path)
        state = hubcore.load_weights(str(path), backend=self.backend_name)
        self.assert_same(to_numpy, source, self.apply(backend, target, state, strict=True))
        # unwrap=False (what the compatibility layers ask for) reads a plain state the same.
        raw = hubcore.load_weights(str(path), backend=self.backend_name, unwrap=False)
        third = self.apply(backend, build(3), raw, strict=True)
        self.assert_same(to_numpy, source, third)

    @pytest.fixture
    def other_state(
        self,
        other_model: Model,
        save_weights: Callable[[Model, Path], None],
        tmp_path: Path,
    ) -> Any:
        """The state of :meth:`other_model`, saved and read back through hubcore."""
        path = tmp_path / f"other{self.formats[0]}"
        save_weights(other_model, path)
        return hubcore.load_weights(str(path), backend=self.backend_name)

    def test_strict_mismatch_names_the_keys(
        self, backend: Backend, build: Callable[..., Model], other_state: Any
    ) -> None:
        with pytest.raises(WeightsMismatchError) as info:
            backend.apply_weights(build(0), other_state, strict=True)
        err = info.value
        assert err.missing or err.unexpected or err.mismatched
        assert any(name.split(" ")[0] in str(err) for name in err.missing + err.mismatched)

    def test_non_strict_applies_what_matches(
        self,
        backend: Backend,
        build: Callable[..., Model],
        save_weights: Callable[[Model, Path], None],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        import numpy as np

        source, target = build(1), build(2)
        path = tmp_path / f"partial{self.formats[0]}"
        save_weights(source, path)
        state = dict(hubcore.load_weights(str(path), backend=self.backend_name))
        dropped = sorted(state)[0]
        del state[dropped]
        with pytest.raises(WeightsMismatchError, match="missing keys"):
            backend.apply_weights(target, state, strict=True)
        kept = to_numpy(target)[dropped].copy()
        applied = self.apply(backend, target, state, strict=False)
        after, expected = to_numpy(applied), to_numpy(source)
        np.testing.assert_array_equal(after[dropped], kept)
        for key in state:
            np.testing.assert_array_equal(after[key], expected[key], err_msg=key)

    def test_pretrained_entrypoint_end_to_end(
        self,
        hub_home: Path,
        build: Callable[..., Model],
        model_source: str,
        save_weights: Callable[[Model, Path], None],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        trained = build(7)
        weights = tmp_path / "repo" / f"trained{self.formats[0]}"
        weights.parent.mkdir()
        save_weights(trained, weights)
        repo = self.make_repo(weights.parent, model_source, weights, hubcore.file_sha256(weights))
        assert hubcore.list(str(repo)) == ["model"]
        fresh = hubcore.load(str(repo), "model", seed=3)
        loaded = hubcore.load(str(repo), "model", seed=3, pretrained=True)
        self.assert_same(to_numpy, trained, loaded)
        with pytest.raises(AssertionError):
            self.assert_same(to_numpy, trained, fresh)

    @pytest.fixture
    def source_and_state(
        self,
        build: Callable[..., Model],
        save_weights: Callable[[Model, Path], None],
        tmp_path: Path,
    ) -> tuple[Model, Any]:
        """A model and its state, saved and read back through hubcore."""
        source = build(1)
        path = tmp_path / f"source{self.formats[0]}"
        save_weights(source, path)
        return source, hubcore.load_weights(str(path), backend=self.backend_name)

    def test_functional_apply_returns_a_new_model(
        self,
        backend: Backend,
        build: Callable[..., Model],
        source_and_state: tuple[Model, Any],
        to_numpy: Callable[[Model], dict[str, Any]],
    ) -> None:
        """``functional = True``: the weights arrive in a new model the backend recognises;
        the model given keeps its parameters."""
        if not is_functional(backend):
            pytest.skip(f"{self.backend_name} applies weights in place (not functional)")
        import numpy as np

        source, state = source_and_state
        target = build(2)
        before = {k: np.array(v, copy=True) for k, v in to_numpy(target).items()}
        applied = backend.apply_weights(target, state, strict=True)
        assert applied is not None, "a functional backend returns the model with the weights"
        assert applied is not target
        assert backend.recognizes(applied)
        self.assert_same(to_numpy, source, applied)
        for key, value in to_numpy(target).items():
            np.testing.assert_array_equal(value, before[key], err_msg=key)

    def test_in_place_apply_returns_nothing_else(
        self,
        backend: Backend,
        build: Callable[..., Model],
        source_and_state: tuple[Model, Any],
        to_numpy: Callable[[Model], dict[str, Any]],
    ) -> None:
        """Without ``functional``, apply_weights changes the model and returns ``None`` (or
        the model): anything else would replace the user's model."""
        if is_functional(backend):
            pytest.skip(f"{self.backend_name} is functional")
        source, state = source_and_state
        target = build(2)
        applied = backend.apply_weights(target, state, strict=True)
        assert applied is None or applied is target
        self.assert_same(to_numpy, source, target)

    @pytest.mark.parametrize(
        ("returns", "kind"),
        [
            ('("head", _build(seed), "tail")', "tuple"),
            ('["head", _build(seed), "tail"]', "list"),
            ('_Loaded("head", _build(seed), "tail")', "Loaded"),
        ],
        ids=["tuple", "list", "namedtuple"],
    )
    def test_pretrained_model_inside_a_result(
        self,
        returns: str,
        kind: str,
        hub_home: Path,
        build: Callable[..., Model],
        model_source: str,
        save_weights: Callable[[Model, Path], None],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        """An entrypoint returning ``(extra, model, extra)`` gets the weights on its model;
        a functional backend's new model takes the old one's place in a container of the
        same type."""
        trained = build(7)
        weights = tmp_path / "repo" / f"trained{self.formats[0]}"
        weights.parent.mkdir()
        save_weights(trained, weights)
        sha = hubcore.file_sha256(weights)
        repo = self.make_repo(weights.parent, model_source, weights, sha, returns=returns)
        result = hubcore.load(str(repo), "model", seed=3, pretrained=True)
        assert type(result).__name__ == kind
        assert len(result) == 3
        assert (result[0], result[2]) == ("head", "tail")
        self.assert_same(to_numpy, trained, result[1])

    # -- saving weights (for backends that declare export_weights) ----------------------------
    @pytest.mark.parametrize("shard_bytes", [None, 1], ids=["one-file", "sharded"])
    def test_exported_weights_round_trip_through_a_package(
        self,
        shard_bytes: int | None,
        hub_home: Path,
        backend: Backend,
        build: Callable[..., Model],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        """``export_weights``: every tensor the backend exports is saved as safetensors and a
        package of the model loads back (a registered type builds it) with equal parameters."""
        if exporter_of(backend) is None:
            pytest.skip(f"{self.backend_name} does not export weights")
        from hubcore.packages.types import _registered

        @hubcore.model_config("conformance-net")
        class NetConfig:
            seed: int = 0

        hubcore.register_model_type(
            "conformance-net", config=NetConfig, build=lambda c: build(c.seed)
        )
        try:
            source = build(1)
            exported = backend.export_weights(source)  # type: ignore[attr-defined]
            assert set(exported) == set(to_numpy(source)), "export names what the state names"
            folder = hubcore.save_pretrained(
                source,
                tmp_path / "package",
                config=NetConfig(seed=2),  # type: ignore[call-arg]
                max_shard_size=shard_bytes or "2GiB",
            )
            shards = sorted(folder.glob("*.safetensors"))
            assert (len(shards) > 1) == (shard_bytes is not None)
            loaded = hubcore.load(str(folder))
            self.assert_same(to_numpy, source, loaded)
        finally:
            _registered.pop("conformance-net", None)

    # -- build without initialising, apply by assignment (WeightAssigner) ---------------------
    def assigned(
        self, backend: Backend, build: Callable[..., Model], path: Path, strict: bool
    ) -> Model:
        """``build(2)`` built for weights, then assigned the file at *path*."""
        if not assigns_weights(backend):
            pytest.skip(f"{self.backend_name} does not build for weights")
        file = hubcore.store.transfer.fetch(str(path))
        with backend.building_for_weights() as record:  # type: ignore[attr-defined]
            model = build(2)
        assert record is not None, "the framework is imported: the build context must act"
        assert isinstance(record.changed, bool)
        applied = backend.assign_weights(model, [file], record, strict=strict)  # type: ignore[attr-defined]
        return model if applied is None else applied

    def test_assigned_weights_equal_the_saved_model(
        self,
        weight_suffix: str,
        hub_home: Path,
        backend: Backend,
        build: Callable[..., Model],
        save_weights: Callable[[Model, Path], None],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        source = build(1)
        path = tmp_path / f"weights{weight_suffix}"
        save_weights(source, path)
        self.assert_same(to_numpy, source, self.assigned(backend, build, path, strict=True))

    def test_assigning_weights_that_do_not_fit_is_refused(
        self,
        hub_home: Path,
        backend: Backend,
        build: Callable[..., Model],
        other_model: Model,
        save_weights: Callable[[Model, Path], None],
        tmp_path: Path,
    ) -> None:
        path = tmp_path / f"other{self.formats[0]}"
        save_weights(other_model, path)
        with pytest.raises((WeightsMismatchError, PlainPathNeeded)):
            self.assigned(backend, build, path, strict=True)

    # -- model files (for backends that declare model_formats) -------------------------------
    def opened_formats(self, backend: Backend) -> tuple[str, ...]:
        """The model-file suffixes *backend* opens; skips the test when there are none."""
        formats = model_formats(backend)
        if not formats:
            pytest.skip(f"{self.backend_name} opens no model files")
        return formats

    def test_model_file_capability_is_whole(self, backend: Backend) -> None:
        """``model_formats`` and ``open_model`` come together, or neither does."""
        declared = getattr(backend, "model_formats", None)
        opener = getattr(backend, "open_model", None)
        if declared is None and opener is None:
            pytest.skip(f"{self.backend_name} opens no model files")
        assert callable(opener), "model_formats without an open_model method"
        assert isinstance(declared, tuple), "model_formats must be a tuple of suffixes"
        assert declared, "open_model without any model_formats"
        assert all(s.startswith(".") and s == s.lower() for s in declared), declared

    def test_model_file_round_trip(
        self,
        hub_home: Path,
        backend: Backend,
        build: Callable[..., Model],
        save_model: Callable[[Model, Path], None],
        to_numpy: Callable[[Model], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        for suffix in self.opened_formats(backend):
            original = build(5)
            path = tmp_path / f"whole-model{suffix}"
            save_model(original, path)
            sha = hubcore.file_sha256(path)
            self.assert_same_model(to_numpy, original, open_model_file(str(path)))
            named = open_model_file(str(path), backend=self.backend_name, sha256=sha)
            self.assert_same_model(to_numpy, original, named)

    def test_model_file_garbage_is_a_format_error(
        self, hub_home: Path, backend: Backend, tmp_path: Path
    ) -> None:
        for suffix in self.opened_formats(backend):
            path = tmp_path / f"garbage{suffix}"
            path.write_bytes(b"\x00not a model at all\xff" * 10)
            with pytest.raises(WeightsFormatError):
                open_model_file(str(path))

    def test_model_file_wrong_hash_is_refused_and_not_cached(
        self,
        hub_home: Path,
        backend: Backend,
        build: Callable[..., Model],
        save_model: Callable[[Model, Path], None],
        tmp_path: Path,
    ) -> None:
        suffix = self.opened_formats(backend)[0]
        path = tmp_path / f"whole-model{suffix}"
        save_model(build(5), path)
        with pytest.raises(IntegrityError) as info:
            open_model_file(str(path), sha256="0" * 64)
        assert hubcore.file_sha256(path) in str(info.value)
        assert not any(p.is_file() for p in (hub_home / "blobs").rglob("*"))

    def test_wrong_hash_is_refused_and_not_cached(
        self,
        hub_home: Path,
        build: Callable[..., Model],
        model_source: str,
        save_weights: Callable[[Model, Path], None],
        tmp_path: Path,
    ) -> None:
        weights = tmp_path / "repo" / f"trained{self.formats[0]}"
        weights.parent.mkdir()
        save_weights(build(7), weights)
        actual = hubcore.file_sha256(weights)
        wrong = "0" * 64
        repo = self.make_repo(weights.parent, model_source, weights, wrong)
        with pytest.raises(IntegrityError) as info:
            hubcore.load(str(repo), "model", pretrained=True)
        assert wrong in str(info.value)
        assert actual in str(info.value)
        assert not any(p.is_file() for p in (hub_home / "blobs").rglob("*"))

    def test_garbage_is_a_format_error(
        self, weight_suffix: str, hub_home: Path, tmp_path: Path
    ) -> None:
        path = tmp_path / f"garbage{weight_suffix}"
        path.write_bytes(b"\x00not weights at all\xff" * 10)
        with pytest.raises(WeightsFormatError):
            hubcore.load_weights(str(path), backend=self.backend_name)

    # -- safetensors files that must be refused (for backends that read .safetensors) ---------
    @staticmethod
    def safetensors_bytes(header: str, data: bytes) -> bytes:
        """A safetensors file written by hand: length, JSON *header*, *data*."""
        raw = header.encode()
        return struct.pack("<Q", len(raw)) + raw + data

    def read_safetensors(self, tmp_path: Path, data: bytes) -> Any:
        if ".safetensors" not in self.formats:
            pytest.skip(f"{self.backend_name} does not read .safetensors")
        path = tmp_path / "crafted.safetensors"
        path.write_bytes(data)
        return hubcore.load_weights(str(path), backend=self.backend_name)

    def test_crafted_safetensors_reads(self, hub_home: Path, tmp_path: Path) -> None:
        """The hand-made file the refusals below start from is valid."""
        good = self.safetensors_bytes(json.dumps({"a": _TENSOR}), b"\0" * 8)
        assert list(self.read_safetensors(tmp_path, good)) == ["a"]

    @pytest.mark.parametrize("keep", [-4, -9, -30, 1], ids=["data", "header", "json", "length"])
    def test_truncated_safetensors_is_a_format_error(
        self, keep: int, hub_home: Path, tmp_path: Path
    ) -> None:
        good = self.safetensors_bytes(json.dumps({"a": _TENSOR}), b"\0" * 8)
        with pytest.raises(WeightsFormatError):
            self.read_safetensors(tmp_path, good[:keep])

    def test_duplicate_safetensors_keys_are_refused(self, hub_home: Path, tmp_path: Path) -> None:
        one = json.dumps({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})
        two = json.dumps(_TENSOR)
        crafted = self.safetensors_bytes(f'{{"a": {one}, "a": {two}}}', b"\0" * 8)
        with pytest.raises(WeightsFormatError, match="more than once"):
            self.read_safetensors(tmp_path, crafted)

    def test_oversized_safetensors_header_is_a_format_error(
        self, hub_home: Path, tmp_path: Path
    ) -> None:
        with pytest.raises(WeightsFormatError):
            self.read_safetensors(tmp_path, struct.pack("<Q", 1 << 40) + b"{}")
