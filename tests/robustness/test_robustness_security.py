"""Security: CORS off unless CORS_ORIGINS names a site; hostile Authorization headers get 401 (never
a 5xx) and the key is compared in constant time; no unsafe deserialisation when models are
loaded; the documented schema says /v1/* needs a key exactly when API_KEY is set.
(The container runs as a non-root user with the model mounted read-only:
deploy/container/container_test.py checks both from outside the container.)"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from reliability.corpus import encode, photo
from tests.support.robustness_kit import FORM, ITEM, b64, settings, started

ROOT = Path(__file__).resolve().parents[2]
GOOD = {**ITEM, "image": b64(encode(photo(), "JPEG"))}
PREFLIGHT = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}  # fmt: skip


def test_cors_is_off_by_default(tiny_client) -> None:
    response = tiny_client.options("/v1/predict", headers=PREFLIGHT)
    assert response.status_code == 405
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    response = tiny_client.post("/v1/predict", json=GOOD, headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.fixture(scope="module")
def cors_client(tiny_model_dir):
    client = started(settings(tiny_model_dir, cors_origins="https://shop.example, https://admin.shop.example"))
    yield client
    client.__exit__(None, None, None)


def test_cors_origins_are_allowed_one_by_one(cors_client) -> None:
    response = cors_client.options("/v1/predict", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers
    refused = cors_client.options("/v1/predict", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    answer = cors_client.post("/v1/predict", json=GOOD, headers={"Origin": "https://admin.shop.example"})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://admin.shop.example"
    other = cors_client.post("/v1/predict", json=GOOD, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.fixture(scope="module")
def keyed_client(tiny_model_dir):
    client = started(settings(tiny_model_dir, api_key="s3cret-key-0123456789"))
    yield client
    client.__exit__(None, None, None)


@pytest.mark.parametrize(
    "authorization",
    [b"", b"Bearer", b"Bearer ", b"bearer s3cret-key-012345678", b"Bearer s3cret-key-01234567890",
     b"Basic czNjcmV0LWtleS0wMTIzNDU2Nzg5", b"Bearer " + b"k" * 100_000, b"Bearer \xff\xfe\xe9t\xe9",
     b"Bearer s3cret-key-0123456789\x00", b"Bearer s3cret-key-0123456789 extra", b"Token s3cret-key-0123456789"],
    ids=["empty", "scheme-only", "scheme-space", "one-short", "one-long", "basic", "100kB", "latin1", "nul",
         "extra-word", "other-scheme"],
)  # fmt: skip
def test_hostile_authorization_headers_get_401(keyed_client, authorization: bytes) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for response in (
        keyed_client.post("/v1/predict", json=GOOD, headers=headers),
        keyed_client.post(
            "/v1/predict/upload", data=FORM, files={"image": ("a.jpg", b"x", "image/jpeg")}, headers=headers
        ),
        keyed_client.get("/v1/model", headers=headers),
    ):
        assert response.status_code == 401, response.text[:200]
        assert response.json()["detail"].startswith("missing or wrong API key")
        assert "s3cret" not in response.text


def test_the_key_is_compared_in_constant_time() -> None:
    """hmac.compare_digest on bytes: the time does not depend on where the first wrong byte is."""
    from service.api import deps

    source = inspect.getsource(deps.require_api_key)
    assert "hmac.compare_digest(" in source and "==" not in source.replace("is None", "")


def test_schema_declares_the_key_only_when_it_is_set(tiny_client, keyed_client) -> None:
    open_doc = tiny_client.get("/openapi.json").json()
    keyed_doc = keyed_client.get("/openapi.json").json()
    assert "securitySchemes" not in open_doc.get("components", {})
    assert all("security" not in op for ops in open_doc["paths"].values() for op in ops.values())
    assert keyed_doc["paths"]["/v1/predict"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "401" in keyed_doc["paths"]["/v1/model"]["get"]["responses"]
    assert "security" not in keyed_doc["paths"]["/healthz"]["get"]


RESTRICTED_UNPICKLER = "training/features/pretrained/weights.py"
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve", "yaml"}
UNSAFE_CALLS = {"load_model", "eval", "exec", "enable_unsafe_deserialization", "loads_pickle"}


def unsafe_uses(path: Path) -> list[str]:
    """Imports of unpickling modules, calls that rebuild objects from code or config, and the
    keyword arguments that turn the safe loaders unsafe."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            found += [f"import {n}" for n in names if n.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in UNSAFE_CALLS:
                found.append(f"{name}()")
            for kw in node.keywords:
                value = kw.value.value if isinstance(kw.value, ast.Constant) else None
                if (kw.arg, value) in (("safe_mode", False), ("allow_pickle", True)):
                    found.append(f"{name}({kw.arg}={value})")
    return [f"{path.relative_to(ROOT)}: {f}" for f in found]


@pytest.mark.parametrize("package", ["service", "training"])
def test_no_unsafe_deserialisation(package: str) -> None:
    """Models are read as SavedModels (protobuf graphs + checkpoint tensors) with
    tf.saved_model.load, and weights from .weights.h5 files: nothing unpickles Python objects or
    rebuilds a Keras model from its config (which would need Keras' safe_mode)."""
    offenders = [f for path in sorted((ROOT / package).rglob("*.py")) for f in unsafe_uses(path)]
    assert offenders == [f"{RESTRICTED_UNPICKLER}: import pickle"] if package == "training" else offenders == []
    if package == "service":
        assert "tf.saved_model.load(" in (ROOT / "service" / "model.py").read_text()


def test_the_one_pickle_reader_allows_only_its_list_of_globals() -> None:
    """The pretrained weights are a PyTorch pickle: the one module that imports pickle subclasses
    the Unpickler with a find_class that refuses every global outside its allow-list (tested on a
    hostile pickle in tests/unit/test_pretrained_weights.py), and it checks a pinned sha256 first."""
    tree = ast.parse((ROOT / RESTRICTED_UNPICKLER).read_text())
    unpicklers = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.ClassDef) and any(ast.unparse(b) == "pickle.Unpickler" for b in n.bases)
    ]
    assert len(unpicklers) == 1
    methods = {f.name for f in unpicklers[0].body if isinstance(f, ast.FunctionDef)}
    assert "find_class" in methods
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "pickle.load" not in calls and "pickle.loads" not in calls  # only the restricted class reads
