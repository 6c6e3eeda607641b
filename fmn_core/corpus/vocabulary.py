"""The cooking vocabulary: actions, objects, classes and how people say them.

The paper's Table 1 (§4.1) builds its 20 classes from actions (倒 切 撒 挤压 搅拌 取出 洗 磨碎 剥),
objects and receivers of MPII Cooking 2. The built-in corpus is compositional: a class is an
(action, object) pair, so every sensible pair below can be rendered and spoken, not only the
20 default classes of DESIGN.md §3.
"""

from __future__ import annotations

from dataclasses import dataclass

from fmn_core.corpus.templates import EN, ZH
from fmn_core.errors import FmnError


@dataclass(frozen=True)
class CookingObject:
    """Something on the counter: how it is named and how the renderer draws it."""

    key: str
    en: tuple[str, ...]  # English names, canonical first (synonyms make phrasings vary)
    zh: tuple[str, ...]  # Mandarin names, canonical first
    shape: str  # renderer's drawing recipe: round, long, bottle, shaker, bowl, pan, plate, can
    color: tuple[int, int, int]  # main colour, BGR as OpenCV draws
    accent: tuple[int, int, int]  # second colour (flesh, cap, rim, label), BGR
    size: float  # typical size as a fraction of the frame height
    mass: bool = False  # uncountable (oil, salt): English uses no article


@dataclass(frozen=True)
class CookingAction:
    """A verb with its phrasings and the objects it can sensibly apply to."""

    key: str
    en: tuple[str, ...]  # English phrasing templates (see templates.py for the fields)
    zh: tuple[str, ...]  # Mandarin phrasing templates
    zh_verb: str  # default Mandarin verb for the class name
    objects: tuple[str, ...]  # object keys this action applies to


OBJECTS: dict[str, CookingObject] = {
    o.key: o
    for o in (
        CookingObject("onion", ("onion",), ("洋葱",), "round", (150, 190, 225), (110, 60, 140), 0.22),
        CookingObject("cucumber", ("cucumber",), ("黄瓜",), "long", (40, 120, 30), (160, 235, 190), 0.34),
        CookingObject("carrot", ("carrot",), ("胡萝卜", "红萝卜"), "long", (20, 110, 240), (40, 170, 60), 0.32),
        CookingObject("pineapple", ("pineapple",), ("菠萝",), "round", (40, 160, 210), (40, 130, 30), 0.34),
        CookingObject("orange", ("orange",), ("橙子",), "round", (10, 140, 250), (170, 220, 250), 0.20),
        CookingObject("apple", ("apple",), ("苹果",), "round", (40, 40, 200), (200, 240, 245), 0.20),
        CookingObject("lemon", ("lemon",), ("柠檬",), "round", (40, 230, 245), (190, 250, 250), 0.17),
        CookingObject("lime", ("lime",), ("青柠",), "round", (40, 190, 90), (170, 240, 190), 0.15),
        CookingObject(
            "oil",
            ("oil", "olive oil", "cooking oil"),
            ("油", "食用油"),
            "bottle",
            (40, 190, 220),
            (30, 90, 40),
            0.38,
            mass=True,
        ),
        CookingObject("milk", ("milk",), ("牛奶",), "bottle", (245, 245, 245), (200, 120, 40), 0.38, mass=True),
        CookingObject("salt", ("salt",), ("盐", "食盐"), "shaker", (250, 250, 250), (160, 160, 160), 0.22, mass=True),
        CookingObject(
            "spice",
            ("spice", "spices", "pepper"),
            ("香料", "调料"),
            "shaker",
            (30, 70, 140),
            (50, 50, 60),
            0.22,
            mass=True,
        ),
        CookingObject("bowl", ("bowl", "mixing bowl"), ("碗",), "bowl", (230, 200, 150), (170, 130, 90), 0.40),
        CookingObject(
            "pan", ("frying pan", "pan", "skillet"), ("煎锅", "平底锅"), "pan", (60, 60, 60), (30, 30, 30), 0.44
        ),
        CookingObject("plate", ("plate",), ("盘子",), "plate", (245, 245, 240), (200, 160, 60), 0.40),
        CookingObject("can", ("can", "tin"), ("罐头",), "can", (60, 60, 200), (190, 190, 200), 0.30),
    )
}

ACTIONS: dict[str, CookingAction] = {
    a.key: a
    for a in (
        CookingAction(
            "cut",
            EN["cut"],
            ZH["cut"],
            "切",
            ("onion", "cucumber", "carrot", "pineapple", "orange", "apple", "lemon", "lime"),
        ),
        CookingAction(
            "peel", EN["peel"], ZH["peel"], "削", ("orange", "carrot", "apple", "cucumber", "onion", "lemon", "lime")
        ),
        CookingAction("pour", EN["pour"], ZH["pour"], "倒", ("oil", "milk")),
        CookingAction("sprinkle", EN["sprinkle"], ZH["sprinkle"], "撒", ("salt", "spice")),
        CookingAction("squeeze", EN["squeeze"], ZH["squeeze"], "挤", ("lemon", "lime", "orange")),
        CookingAction("stir", EN["stir"], ZH["stir"], "搅拌", ("bowl", "pan")),
        CookingAction("take_out", EN["take_out"], ZH["take_out"], "取出", ("plate", "can", "bowl", "pan")),
        CookingAction("wash", EN["wash"], ZH["wash"], "洗", ("apple", "cucumber", "carrot", "lemon", "lime", "orange")),
        CookingAction("grate", EN["grate"], ZH["grate"], "磨碎", ("carrot", "apple", "cucumber", "onion")),
    )
}

LANGUAGES = ("en", "zh")  # the languages phrasings exist for

# Where a pour goes (the paper's "receiver"); DESIGN.md §3's default classes fix these two.
POUR_RECEIVER = {"oil": "pan", "milk": "bowl"}
# The Mandarin verb for peeling depends on the object: 剥 for thin-skinned fruit peeled by hand.
_ZH_PEEL_BY_HAND = {"orange", "onion", "lemon", "lime"}
# Stirring in a frying pan is 翻炒 in Mandarin.
_ZH_STIR = {"bowl": "搅拌", "pan": "翻炒"}

DEFAULT_CLASSES: tuple[str, ...] = (
    "cut_onion",
    "cut_cucumber",
    "cut_carrot",
    "cut_pineapple",
    "peel_orange",
    "peel_carrot",
    "peel_apple",
    "pour_oil",
    "pour_milk",
    "sprinkle_salt",
    "sprinkle_spice",
    "squeeze_lemon",
    "squeeze_lime",
    "stir_bowl",
    "stir_pan",
    "take_out_plate",
    "take_out_can",
    "wash_apple",
    "wash_cucumber",
    "grate_carrot",
)


@dataclass(frozen=True)
class CookingClass:
    """One class of the corpus: an action applied to an object (and for pouring, a receiver)."""

    key: str
    action: str
    obj: str
    receiver: str | None

    @property
    def en(self) -> str:
        """Canonical English name, e.g. 'pour the oil into the frying pan'."""
        return phrasings(self, "en")[0]

    @property
    def zh(self) -> str:
        """Canonical Mandarin name, e.g. '往煎锅里倒油'."""
        return phrasings(self, "zh")[0]


class VocabularyError(FmnError, ValueError):
    """An unknown class key, action or object; the message lists the valid ones."""


def parse_class(key: str) -> CookingClass:
    """Turn a class key such as 'take_out_plate' into a CookingClass.

    Raises:
        VocabularyError: the key names no known action, an unknown object, or a pair that makes
            no sense (e.g. 'sprinkle_plate'); the message lists what is valid.
    """
    action = next((a for a in sorted(ACTIONS, key=len, reverse=True) if key.startswith(a + "_")), None)
    if action is None:
        raise VocabularyError(
            f"unknown class {key!r}: it must start with an action, one of {', '.join(sorted(ACTIONS))}"
        )
    obj = key[len(action) + 1 :]
    if obj not in OBJECTS:
        raise VocabularyError(
            f"unknown object {obj!r} in class {key!r}: valid objects are {', '.join(sorted(OBJECTS))}"
        )
    if obj not in ACTIONS[action].objects:
        raise VocabularyError(
            f"class {key!r} makes no sense: '{action}' applies to {', '.join(ACTIONS[action].objects)}"
        )
    receiver = POUR_RECEIVER.get(obj) if action == "pour" else (obj if action == "stir" else None)
    return CookingClass(key=key, action=action, obj=obj, receiver=receiver)


def all_class_keys() -> list[str]:
    """Every sensible (action, object) pair of the vocabulary, as class keys."""
    return [f"{a.key}_{o}" for a in ACTIONS.values() for o in a.objects]


def _en_forms(cls: CookingClass, name: str) -> dict[str, str]:
    obj = OBJECTS[cls.obj]
    a_o = name if obj.mass else ("an " if name[0] in "aeiou" else "a ") + name
    plural = name if obj.mass or name.endswith("s") else name + "s"
    receiver = f"the {OBJECTS[cls.receiver].en[0]}" if cls.receiver else ""
    return {"o": name, "a_o": a_o, "os": plural, "r": receiver}


def _zh_verb(cls: CookingClass) -> str:
    if cls.action == "peel":
        return "剥" if cls.obj in _ZH_PEEL_BY_HAND else "削"
    if cls.action == "stir":
        return _ZH_STIR[cls.obj]
    return ACTIONS[cls.action].zh_verb


@dataclass(frozen=True)
class Phrasing:
    """One way of saying a class, and the template it came from."""

    template: str  # stable template key "action/lang/NN", e.g. "cut/en/07"
    text: str  # the filled-in words, e.g. "how do I cut an onion"


def template_keys(action: str, lang: str) -> list[str]:
    """Keys of an action's templates in a language, in order ("cut/en/00", "cut/en/01", ...)."""
    templates = _templates(ACTIONS[action], lang)
    return [f"{action}/{lang}/{i:02d}" for i in range(len(templates))]


def _templates(action: CookingAction, lang: str) -> tuple[str, ...]:
    if lang not in LANGUAGES:
        raise VocabularyError(f"unknown language {lang!r}: valid languages are {', '.join(LANGUAGES)}")
    return action.en if lang == "en" else action.zh


def phrasing_templates(cls: CookingClass, lang: str) -> list[Phrasing]:
    """All distinct phrasings of a class in a language ('en' or 'zh') with their template keys.

    Every template of the action is filled with every name of the object, canonical name first,
    so the list is long enough for many distinct utterances per class. A text two templates
    happen to share is kept once, under the first.
    """
    action, obj = ACTIONS[cls.action], OBJECTS[cls.obj]
    keys = template_keys(cls.action, lang)
    out: dict[str, str] = {}
    for name in obj.en if lang == "en" else obj.zh:
        for key, template in zip(keys, _templates(action, lang), strict=True):
            if lang == "en":
                text = template.format(**_en_forms(cls, name))
            else:
                receiver = OBJECTS[cls.receiver].zh[0] if cls.receiver else ""
                text = template.format(o=name, r=receiver, v=_zh_verb(cls))
            out.setdefault(text, key)
    return [Phrasing(key, text) for text, key in out.items()]


def phrasings(cls: CookingClass, lang: str) -> list[str]:
    """All distinct phrasings of a class in a language ('en' or 'zh'), canonical first."""
    return [p.text for p in phrasing_templates(cls, lang)]
