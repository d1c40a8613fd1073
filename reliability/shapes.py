"""Listings as sellers really send them (issue 17): inputs left out, nulls and blank strings, several
photos, one bad photo among several, batches mixing all of these; each request with the status it
must get and what its answer must say (the ``missing`` list of a price, the ``loc`` of a refusal).

- ``shape_kinds(card)``: the fixed shapes, for the soak's mix and the fuzz's shape pass;
- ``random_kinds(card, rng, n)``: ``n`` random combinations (which inputs given, null, blank; how
  many photos, sent how; a bad one where; which route), each with the answer an oracle works out
  from the contract (docs/contract.md, "Missing inputs and several photos").

``card`` is the service's own ``GET /v1/model`` answer: its ``served`` block says whether inputs
may be left out (``optional_inputs``) and how many photos each image input takes (``max_photos``).
A card without them (an older model) gets the same shapes with today's answers: every input
required (422 naming the field), one photo, no ``images`` field.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx

from reliability.corpus import BadImage, bad_images, encode, photo
from reliability.mix import Kind, item_from_card

JSON = {"content-type": "application/json"}
UNKNOWN_CATEGORY = "a brand nobody has heard of"


def model_errors(entry: BadImage) -> bool:
    """A corpus photo that only the model's own decoder refuses (its 422 names no field)."""
    return entry.message.startswith("the model could not")


def empty_is_no_photo(card: Card, entry: BadImage) -> bool:
    """An empty file part on a card with ``missing``: a file field left empty, no photo (not refused)."""
    return card.optional and not entry.data


def refused_photos() -> list[BadImage]:
    """The corpus's refused photos that the service itself refuses, naming where the photo was."""
    return [e for e in bad_images() if e.status != 200 and not model_errors(e)]


@dataclass(frozen=True)
class Card:
    """What the shapes need to know of the served model (from ``GET /v1/model``)."""

    inputs: tuple[dict[str, Any], ...]
    optional: bool
    max_photos: int  # of the image input (1: an older card)
    image: str | None  # the image input's name
    groups: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, card: dict[str, Any]) -> Card:
        served = card.get("served") or {}
        inputs = tuple(card["inputs"])
        image = next((s["name"] for s in inputs if s["role"] == "image"), None)
        roles = {"categorical": "metadata", "numeric": "metadata", "text": "text", "image": "image"}
        groups: dict[str, list[str]] = {}
        for spec in inputs:
            groups.setdefault(roles[spec["role"]], []).append(spec["name"])
        served_groups = served.get("input_groups") or groups
        return cls(
            inputs=inputs,
            optional=bool(served.get("optional_inputs")),
            max_photos=int((served.get("max_photos") or {}).get(image, 1)) if image else 0,
            image=image,
            groups={g: tuple(names) for g, names in served_groups.items()},
        )

    @property
    def images(self) -> str | None:
        """The list field of the image input (``images``), when the request takes one."""
        return f"{self.image}s" if self.image and (self.optional or self.max_photos > 1) else None

    @cached_property
    def base(self) -> dict[str, Any]:
        """Every input but the photo, with a plausible value."""
        return item_from_card({"inputs": list(self.inputs)})

    def names(self, role: str) -> list[str]:
        return [s["name"] for s in self.inputs if s["role"] == role]

    @property
    def order(self) -> list[str]:
        return [s["name"] for s in self.inputs]

    def title(self) -> str | None:
        """The text input a seller fills first: ``title`` when there is one."""
        texts = self.names("text")
        return "title" if "title" in texts else (texts[0] if texts else None)


PHOTOS = tuple(encode(photo((64, 48), seed=20 + s, block=4), "JPEG", quality=85) for s in range(17))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _given(spec: dict[str, Any], value: Any) -> bool:
    """The contract's "given": a string not blank, a number not null."""
    if spec["role"] == "numeric":
        return value is not None
    return isinstance(value, str) and bool(value.strip())


def missing_of(card: Card, item: dict[str, Any], photos: int) -> tuple[str, ...]:
    """The ``missing`` list the answer to ``item`` (without its photos) and ``photos`` must carry."""
    if not card.optional:
        return ()
    out = []
    for spec in card.inputs:
        if spec["role"] == "image":
            if photos == 0:
                out.append(spec["name"])
        elif not _given(spec, item.get(spec["name"])):
            out.append(spec["name"])
    return tuple(out)


def nothing_given(card: Card, item: dict[str, Any], photos: int) -> bool:
    return photos == 0 and not any(_given(s, item.get(s["name"])) for s in card.inputs if s["role"] != "image")


def form_given(card: Card, fields: dict[str, Any]) -> dict[str, Any]:
    """A form's fields as the service reads them: a blank number field is a number not given."""
    numeric = set(card.names("numeric"))
    return {k: None if k in numeric and isinstance(v, str) and not v.strip() else v for k, v in fields.items()}


def _json(body: Any) -> tuple[bytes, dict[str, str]]:
    return json.dumps(body).encode(), dict(JSON)


def _form(
    fields: dict[str, Any], parts: list[tuple[str, bytes, str]], image: str | None, empty_part: bool = True
) -> tuple[bytes, dict[str, str]]:
    """A multipart form: ``fields`` as text, ``parts`` (filename, data, type) as ``image`` file parts;
    with no part, an empty one (a file field left empty), or an urlencoded form (``empty_part`` False)."""
    files = [(image, part) for part in parts] if image else []
    if not files and empty_part and image:
        files = [(image, ("", b"", "application/octet-stream"))]
    data = {k: "" if v is None else str(v) for k, v in fields.items()}
    request = httpx.Request("POST", "http://127.0.0.1/", data=data, files=files or None)
    return request.read(), {"content-type": request.headers["content-type"]}


def _jpeg(index: int) -> tuple[str, bytes, str]:
    return (f"photo{index}.jpg", PHOTOS[index % len(PHOTOS)], "image/jpeg")


class _Shapes:
    """The fixed shapes of one card, added kind by kind (``kinds``)."""

    def __init__(self, card: Card) -> None:
        assert card.image is not None
        self.card = card
        self.kinds: list[Kind] = []
        self.image, self.images, self.n = card.image, card.images, card.max_photos
        self.base = card.base
        self.metadata = [*card.names("categorical"), *card.names("numeric")]
        self.texts = card.names("text")
        self.title = card.title()
        self.one = b64(PHOTOS[0])
        self.nulls = {k: None for k in self.metadata}
        self.blanks = {k: "" for k in card.names("categorical")} | {k: "   " for k in self.texts[:1]}
        self.blanks |= {k: "" for k in self.texts[1:]}
        self.several = card.optional or self.n > 1  # the upload takes several `image` parts

    def priced(self, name: str, w: float, path: str, body: tuple[bytes, dict[str, str]], missing: list) -> None:
        self.kinds.append(Kind(name, w, "POST", path, frozenset({200}), *body, missing=tuple(missing)))

    def refusal(self, name: str, w: float, path: str, body, loc: tuple[str | int, ...], status: int = 422) -> None:
        self.kinds.append(Kind(name, w, "POST", path, frozenset({status}), *body, loc=loc))

    def single(self, name: str, w: float, item: dict[str, Any], photos: int, required: str | None = None) -> None:
        """``item`` (its photos in it) to /v1/predict: a price, or on an older card a 422 naming
        ``required`` (an input it lacks; None: an older card prices it too)."""
        card = self.card
        fields = {k: v for k, v in item.items() if k not in (self.image, self.images)}
        if card.optional and nothing_given(card, fields, photos):
            self.refusal(name, w, "/v1/predict", _json(item), ())
        elif card.optional or required is None:
            self.priced(name, w, "/v1/predict", _json(item), [missing_of(card, fields, photos)])
        else:
            self.refusal(name, w, "/v1/predict", _json(item), (required,))

    def without(self, *names: str) -> dict[str, Any]:
        return {k: v for k, v in self.base.items() if k not in names}

    def missing_inputs(self) -> None:
        """Each kind of missing input through /v1/predict (an older card: 422 naming the input)."""
        image, metadata, texts, one = self.image, self.metadata, self.texts, self.one
        other = [*metadata, *texts, image]
        self.single("no photo", 2.0, dict(self.base), 0, required=image)
        if texts:
            self.single("no text", 1.5, {**self.without(*texts), image: one}, 1, required=texts[0])
        if metadata:
            self.single("no metadata", 1.5, {**self.without(*metadata), image: one}, 1, required=metadata[0])
            first = metadata[0]
            self.single(f"only {first}", 0.5, {first: self.base[first]}, 0, required=other[1])
            self.single("nulls for the metadata", 1.0, {**self.base, **self.nulls, image: one}, 1, required=first)
        self.single("only a photo", 1.5, {image: one}, 1, required=other[0])
        if self.title:
            self.single("only a title", 1.5, {self.title: "Blue denim jacket, barely worn"}, 0, required=other[0])
        if self.blanks:  # on an older card a blank category is an unknown one, a blank text a text: priced
            self.single("empty strings", 1.0, {**self.base, **self.blanks, image: one}, 1)
        if self.card.names("categorical"):
            first = self.card.names("categorical")[0]
            self.single("an unknown category is not missing", 0.5, {first: UNKNOWN_CATEGORY}, 0, required=other[1])

    def several_photos(self) -> None:
        """1..max_photos photos through ``images``, one more, both fields (an older card: no ``images``)."""
        base, image, images, n, one = self.base, self.image, self.images, self.n, self.one
        if not images:
            self.refusal("images on an older card", 1.0, "/v1/predict", _json({**base, f"{image}s": [one]}),
                         (f"{image}s",))  # fmt: skip
            return
        for k in range(1, n + 1):
            self.single(f"{k} photo(s) in images", 4.0 / n, {**base, images: [b64(p) for p in PHOTOS[:k]]}, k)
        self.single("images: [] (no photo)", 0.5, {**base, images: []}, 0)
        self.single("images: null", 0.5, {**base, images: None}, 0)
        body = _json({**base, images: [one] * (n + 1)})
        self.refusal(f"{n + 1} photos in images", 1.0, "/v1/predict", body, (images,))
        self.refusal("image and images both", 0.5, "/v1/predict", _json({**base, image: one, images: [one]}), (images,))

    def multipart(self) -> None:
        """Several ``image`` parts, none, photos only, blank fields (an older card: exactly one part)."""
        card, base, image, n = self.card, self.base, self.image, self.n
        path = "/v1/predict/upload"
        if not self.several:
            self.refusal("upload with 2 photos on an older card", 0.5, path, _form(base, [_jpeg(0), _jpeg(1)], image),
                         (image,))  # fmt: skip
            self.refusal("upload with an empty photo part on an older card", 0.5, path, _form(base, [], image),
                         (image,))  # fmt: skip
            self.kinds.append(Kind("urlencoded upload on an older card (multipart only)", 0.3, "POST", path,
                                   frozenset({415}), *_form(base, [], image, empty_part=False)))  # fmt: skip
            return
        for k in range(1, n + 1):
            self.priced(f"upload with {k} photo(s)", 3.0 / n, path, _form(base, [_jpeg(i) for i in range(k)], image),
                        [()])  # fmt: skip
        self.refusal(f"upload with {n + 1} photos", 0.5, path, _form(base, [_jpeg(i) for i in range(n + 1)], image),
                     (image,))  # fmt: skip
        if not card.optional:
            return
        self.priced("upload without a photo (urlencoded)", 1.0, path, _form(base, [], image, empty_part=False),
                    [missing_of(card, base, 0)])  # fmt: skip
        self.priced("upload without a photo (an empty part)", 1.0, path, _form(base, [], image),
                    [missing_of(card, base, 0)])  # fmt: skip
        self.priced("upload of photos only", 1.0, path, _form({}, [_jpeg(0), _jpeg(1)], image),
                    [missing_of(card, {}, 2)])  # fmt: skip
        blank_form = {k: "" for k in base}
        if self.title:
            blank_form[self.title] = "Leather boots"
            self.priced("upload of a title and blank fields", 1.0, path, _form(blank_form, [], image),
                        [missing_of(card, form_given(card, blank_form), 0)])  # fmt: skip
        self.refusal("upload of nothing", 0.5, path, _form({k: "" for k in base}, [], image), ())

    def nothing(self) -> None:
        """Nothing given at all: 422 (on an older card, naming the first input)."""
        bodies: list[tuple[str, dict[str, Any]]] = [("nothing given ({})", {})]
        bodies.append(("only nulls and blanks", {**self.nulls, **{k: "" for k in self.texts}}))
        if self.images:
            bodies.append(("only images: []", {self.images: []}))
        loc: tuple[str | int, ...] = () if self.card.optional else (self.card.order[0],)
        for name, body in bodies:
            self.refusal(name, 0.7, "/v1/predict", _json(body), loc)

    def bad_photos(self) -> None:
        """One refused photo among several (the last): its 4xx names its index."""
        base, image, images = self.base, self.image, self.images
        many = min(3, self.n)
        corpus = refused_photos()
        for entry in corpus:
            if images:
                photos = [b64(p) for p in PHOTOS[: many - 1]] + [b64(entry.data)]
                self.refusal(f"bad photo among several: {entry.name}", 4.0 / len(corpus), "/v1/predict",
                             _json({**base, images: photos}), (images, many - 1), entry.status)  # fmt: skip
            if self.several and empty_is_no_photo(self.card, entry):
                parts = [_jpeg(i) for i in range(many - 1)] + [(entry.filename, entry.data, entry.media_type)]
                self.priced(f"empty part among several is no photo: {entry.name}", 1.0 / len(corpus),
                            "/v1/predict/upload", _form(base, parts, image), [missing_of(self.card, base, many - 1)])  # fmt: skip
            elif self.several:
                parts = [_jpeg(i) for i in range(many - 1)] + [(entry.filename, entry.data, entry.media_type)]
                self.refusal(f"bad part among several: {entry.name}", 2.0 / len(corpus), "/v1/predict/upload",
                             _form(base, parts, image), (image, many - 1), entry.status)  # fmt: skip
        model_refused = [e for e in bad_images() if model_errors(e)]
        if images and model_refused:  # refused by the model's decoder: a 422 that cannot name the photo
            photos = [self.one, b64(model_refused[0].data)][: self.n]
            self.kinds.append(Kind(f"model-refused photo among several: {model_refused[0].name}", 0.5, "POST",
                                   "/v1/predict", frozenset({422}), *_json({**base, images: photos})))  # fmt: skip

    def batches(self) -> None:
        """Items with different missing inputs in one batch; one refused item named by its index."""
        card, base, image, images, n, one = self.card, self.base, self.image, self.images, self.n, self.one
        path = "/v1/predict/batch"
        if not card.optional:
            body = _json({"items": [{**base, image: one}, dict(base)]})
            self.refusal("batch with an item without a photo on an older card", 0.7, path, body, ("items", 1, image))
            return
        items: list[tuple[dict[str, Any], int]] = [({**base, image: one}, 1), (dict(base), 0), ({image: one}, 1)]
        if self.title:
            items.append(({self.title: "Wool scarf"}, 0))
        if images:
            items.append(({**self.without(*self.texts), images: [b64(p) for p in PHOTOS[:n]]}, n))
            titled = {self.title: "Silk blouse"} if self.title else {}
            items.append(({**base, **self.nulls, **self.blanks, **titled, images: [one] * min(2, n)}, min(2, n)))
        fields = [{k: v for k, v in it.items() if k not in (image, images)} for it, _ in items]
        expected = [missing_of(card, f, p) for f, (_, p) in zip(fields, items, strict=True)]
        self.priced(f"batch of {len(items)} with different missing inputs", 3.0, path,
                    _json({"items": [it for it, _ in items]}), expected)  # fmt: skip
        self.refusal("batch with an item giving nothing", 0.7, path, _json({"items": [{**base, image: one}, {}]}),
                     ("items", 1))  # fmt: skip
        if images:
            bad = refused_photos()[0]
            body = _json({"items": [{image: one}, {**base, images: [one, b64(bad.data)][:n]}]})
            self.refusal("batch with a bad photo among several", 0.7, path, body,
                         ("items", 1, images, min(1, n - 1)), bad.status)  # fmt: skip
            body = _json({"items": [dict(base), {images: [one] * (n + 1)}]})
            self.refusal("batch with too many photos in an item", 0.5, path, body, ("items", 1, images))


def shape_kinds(card_json: dict[str, Any], weight: float = 30.0) -> list[Kind]:
    """The fixed shapes for the served card, their weights summing to ``weight``."""
    card = Card.of(card_json)
    if card.image is None:
        return []
    shapes = _Shapes(card)
    for add in (shapes.missing_inputs, shapes.several_photos, shapes.multipart, shapes.nothing, shapes.bad_photos,
                shapes.batches):  # fmt: skip
        add()
    total = sum(k.weight for k in shapes.kinds) or 1.0
    return [dataclasses.replace(k, weight=k.weight * weight / total) for k in shapes.kinds]


# ---------------------------------------------------------------------- random combinations


def _random_fields(card: Card, rng: random.Random, form: bool) -> dict[str, Any]:
    """Each input but the photo: given, left out, null, blank, or (a category) an unknown value."""
    item: dict[str, Any] = {}
    for spec in card.inputs:
        name, role = spec["name"], spec["role"]
        if role == "image":
            continue
        choice = rng.choices(["given", "absent", "null", "blank", "unknown"], [5, 3, 1, 1, 1])[0]
        if choice == "given" or (choice == "unknown" and role != "categorical"):
            item[name] = card.base[name]
        elif choice == "unknown":
            item[name] = UNKNOWN_CATEGORY
        elif choice == "null":
            item[name] = "" if form else None
        elif choice == "blank":
            if role == "numeric":
                item[name] = " " if form else None
            else:
                item[name] = rng.choice(["", " ", "\t  "])
    return item


@dataclass
class _Photos:
    count: int
    bad_at: int | None = None
    bad: BadImage | None = None


def _random_photos(card: Card, rng: random.Random) -> _Photos:
    """0..max_photos+1 photos, one of them a refused corpus file now and then."""
    count = rng.choices(range(card.max_photos + 2), [3] + [2] * card.max_photos + [1])[0]
    if count and rng.random() < 0.2:
        return _Photos(count, rng.randrange(count), rng.choice(refused_photos()))
    return _Photos(count)


def _outcome(
    card: Card, fields: dict[str, Any], photos: _Photos, where: tuple[str | int, ...], loc: tuple[str | int, ...]
) -> tuple[int, tuple[str | int, ...] | None, tuple[str, ...] | None]:
    """(status, the loc a refusal names, the ``missing`` of a price) the contract calls for."""
    if photos.count > card.max_photos:
        return 422, loc, None
    if photos.bad is not None:
        return photos.bad.status, (*loc, photos.bad_at) if len(loc) == len(where) + 1 else loc, None
    if nothing_given(card, fields, photos.count):
        return 422, where, None
    return 200, None, missing_of(card, fields, photos.count)


def _photo_list(photos: _Photos) -> list[bytes]:
    out = [PHOTOS[i % len(PHOTOS)] for i in range(photos.count)]
    if photos.bad is not None and photos.bad_at is not None:
        out[photos.bad_at] = photos.bad.data
    return out


def _random_json_item(card: Card, rng: random.Random, where: tuple[str | int, ...]):
    """A random JSON item and its outcome (status, loc of a refusal, ``missing`` of a price); the
    photos as ``images`` (absent, null or [] for none), or as ``image`` when there is one."""
    assert card.images is not None and card.image is not None
    fields = _random_fields(card, rng, form=False)
    photos = _random_photos(card, rng)
    data = _photo_list(photos)
    item = dict(fields)
    if photos.count == 1 and rng.random() < 0.4:
        item[card.image] = b64(data[0])
        bad_loc: tuple[str | int, ...] = (*where, card.image)
    else:
        if photos.count:
            item[card.images] = [b64(d) for d in data]
        elif rng.random() < 0.4:
            item[card.images] = rng.choice([[], None])
        bad_loc = (*where, card.images, photos.bad_at if photos.bad_at is not None else 0)
    if photos.count > card.max_photos:
        return item, 422, (*where, card.images), None
    if photos.bad is not None:
        return item, photos.bad.status, bad_loc, None
    if nothing_given(card, fields, photos.count):
        return item, 422, where, None
    return item, 200, None, missing_of(card, fields, photos.count)


def _kind(name: str, path: str, body: tuple[bytes, dict[str, str]], status: int, loc, missing) -> Kind:
    answers = None if missing is None else (missing if path.endswith("/batch") else (missing,))
    return Kind(name, 1.0, "POST", path, frozenset({status}), *body, missing=answers, loc=loc)


def _random_batch(card: Card, rng: random.Random, name: str) -> Kind:
    """1..6 random items, one of them refused now and then (the batch's status is then its own)."""
    size = rng.randint(1, 6)
    refused_item = rng.randrange(size) if rng.random() < 0.4 else None
    items, answers, outcome = [], [], None
    for i in range(size):
        while True:
            item, status, loc, missing = _random_json_item(card, rng, ("items", i))
            if (status == 200) == (i != refused_item):
                break
        items.append(item)
        answers.append(missing)
        if status != 200:
            outcome = (status, loc)
    body = _json({"items": items})
    if outcome is None:
        return _kind(name, "/v1/predict/batch", body, 200, None, tuple(answers))
    return _kind(name, "/v1/predict/batch", body, outcome[0], outcome[1], None)


def _random_upload(card: Card, rng: random.Random, name: str) -> Kind:
    """A form with random fields left out or blank and 0..max_photos+1 ``image`` parts."""
    assert card.image is not None
    fields = _random_fields(card, rng, form=True)
    photos = _random_photos(card, rng)
    parts = [(f"p{i}.jpg", d, "image/jpeg") for i, d in enumerate(_photo_list(photos))]
    if photos.bad is not None and photos.bad_at is not None:
        parts[photos.bad_at] = (photos.bad.filename, photos.bad.data, photos.bad.media_type)
        if empty_is_no_photo(card, photos.bad):  # left out, the other parts renumbered
            photos = _Photos(photos.count - 1)
    body = _form(fields, parts, card.image, empty_part=not fields or rng.random() < 0.5)
    given = form_given(card, fields)
    path = "/v1/predict/upload"
    if photos.count > card.max_photos:
        return _kind(name, path, body, 422, (card.image,), None)
    if photos.bad is not None:
        return _kind(name, path, body, photos.bad.status, (card.image, photos.bad_at), None)
    if nothing_given(card, given, photos.count):
        return _kind(name, path, body, 422, (), None)
    return _kind(name, path, body, 200, None, missing_of(card, given, photos.count))


def random_kinds(card_json: dict[str, Any], rng: random.Random, count: int) -> list[Kind]:
    """``count`` random requests over /v1/predict, /batch and /upload with the answers the contract
    calls for. An older card: random inputs left out or null, expecting 422 naming the input."""
    card = Card.of(card_json)
    if card.image is None:
        return []
    if not card.optional:
        return [_older_card_kind(card, rng, i) for i in range(count)]
    kinds = []
    for index in range(count):
        route = rng.choices(["json", "batch", "upload"], [5, 2, 3])[0]
        if route == "json":
            item, status, loc, missing = _random_json_item(card, rng, ())
            kinds.append(_kind(f"random json #{index}", "/v1/predict", _json(item), status, loc, missing))
        elif route == "batch":
            kinds.append(_random_batch(card, rng, f"random batch #{index}"))
        else:
            kinds.append(_random_upload(card, rng, f"random upload #{index}"))
    return kinds


def _older_card_kind(card: Card, rng: random.Random, index: int) -> Kind:
    """An older card: a full item with one input left out or null (422 naming it), or given whole."""
    item = {**card.base, card.image: b64(PHOTOS[index % len(PHOTOS)])}
    if rng.random() < 0.2:
        return Kind(f"random older-card json #{index}", 1.0, "POST", "/v1/predict", frozenset({200}), *_json(item),
                    missing=((),))  # fmt: skip
    name = rng.choice(card.order)
    if rng.random() < 0.5:
        item.pop(name)
    else:
        item[name] = None
    return Kind(f"random older-card json #{index}", 1.0, "POST", "/v1/predict", frozenset({422}), *_json(item),
                loc=(name,))  # fmt: skip
