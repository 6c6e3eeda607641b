"""The cooking vocabulary: actions, objects, classes and how people say them.

The paper's Table 1 (§4.1) builds its 20 classes from actions (倒 切 撒 挤压 搅拌 取出 洗 磨碎 剥),
objects and receivers of MPII Cooking 2. The built-in corpus is compositional: a class is an
(action, object) pair, so every sensible pair below can be rendered and spoken, not only the
20 default classes of DESIGN.md §3.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    en: tuple[str, ...]  # English phrasing templates: {o} object, {r} receiver (with article)
    zh: tuple[str, ...]  # Mandarin phrasing templates: {o} object, {r} receiver, {v} verb
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

_CUT_EN = (
    "cut the {o}",
    "slice the {o}",
    "chop the {o}",
    "now I'm cutting {a_o}",
    "let's cut up the {o}",
    "cutting {a_o} with a knife",
    "dice the {o}",
    "I slice {a_o} on the board",
    "cut {a_o} into pieces",
    "time to chop the {o}",
)
_CUT_ZH = (
    "切{o}",
    "把{o}切开",
    "现在我在切{o}",
    "我们来切一下{o}",
    "用刀切{o}",
    "把{o}切成片",
    "切一个{o}",
    "来切{o}吧",
    "把{o}切成小块",
    "先切{o}",
)

ACTIONS: dict[str, CookingAction] = {
    a.key: a
    for a in (
        CookingAction(
            "cut",
            _CUT_EN,
            _CUT_ZH,
            "切",
            ("onion", "cucumber", "carrot", "pineapple", "orange", "apple", "lemon", "lime"),
        ),
        CookingAction(
            "peel",
            (
                "peel the {o}",
                "peel {a_o}",
                "now I'm peeling the {o}",
                "take the skin off the {o}",
                "let's peel {a_o}",
                "peeling the {o}",
                "remove the peel from the {o}",
                "I peel the {o} first",
                "strip the skin off {a_o}",
                "time to peel the {o}",
            ),
            (
                "{v}{o}",
                "把{o}{v}皮",
                "现在我在{v}{o}",
                "我们来{v}一下{o}",
                "给{o}{v}皮",
                "先把{o}的皮{v}掉",
                "{v}一个{o}",
                "来{v}{o}吧",
                "把{o}的皮去掉",
                "{v}{o}皮",
            ),
            "削",
            ("orange", "carrot", "apple", "cucumber", "onion", "lemon", "lime"),
        ),
        CookingAction(
            "pour",
            (
                "pour {o} into {r}",
                "pour the {o} into {r}",
                "now I'm pouring {o} into {r}",
                "add some {o} to {r}",
                "let's pour {o} in {r}",
                "pouring {o} into {r}",
                "put a little {o} in {r}",
                "fill {r} with {o}",
                "I pour the {o} into {r}",
                "tip some {o} into {r}",
            ),
            (
                "往{r}里倒{o}",
                "把{o}倒进{r}",
                "现在往{r}里倒{o}",
                "我们往{r}里加点{o}",
                "倒{o}",
                "在{r}里倒一些{o}",
                "把{o}倒到{r}里",
                "来倒点{o}吧",
                "往{r}里加{o}",
                "倒一点{o}进{r}",
            ),
            "倒",
            ("oil", "milk"),
        ),
        CookingAction(
            "sprinkle",
            (
                "sprinkle {o}",
                "sprinkle some {o}",
                "now I'm sprinkling {o}",
                "add a pinch of {o}",
                "let's sprinkle the {o}",
                "sprinkling {o} on top",
                "shake some {o} over it",
                "season it with {o}",
                "dust it with {o}",
                "a little {o} on top",
            ),
            (
                "撒{o}",
                "撒点{o}",
                "现在撒一些{o}",
                "我们来撒{o}",
                "加一点{o}",
                "在上面撒{o}",
                "撒上{o}",
                "来撒点{o}吧",
                "均匀地撒{o}",
                "放一撮{o}",
            ),
            "撒",
            ("salt", "spice"),
        ),
        CookingAction(
            "squeeze",
            (
                "squeeze the {o}",
                "squeeze {a_o}",
                "now I'm squeezing {a_o}",
                "juice the {o}",
                "let's squeeze the {o}",
                "squeezing the {o}",
                "press the juice out of the {o}",
                "I squeeze the {o}",
                "get the juice from {a_o}",
                "time to squeeze the {o}",
            ),
            (
                "挤{o}",
                "挤一下{o}",
                "现在我在挤{o}",
                "我们来挤{o}",
                "把{o}挤出汁",
                "榨{o}汁",
                "挤一个{o}",
                "来挤{o}吧",
                "用力挤{o}",
                "把{o}的汁挤出来",
            ),
            "挤",
            ("lemon", "lime", "orange"),
        ),
        CookingAction(
            "stir",
            (
                "stir in {r}",
                "stir it in {r}",
                "now I'm stirring in {r}",
                "mix everything in {r}",
                "let's stir {r}",
                "stirring the food in {r}",
                "give {r} a stir",
                "I stir in {r}",
                "keep stirring in {r}",
                "mix it up in {r}",
            ),
            (
                "在{r}里{v}",
                "在{r}里{v}一下",
                "现在在{r}里{v}",
                "我们在{r}里{v}",
                "把{r}里的东西{v}均匀",
                "{v}{r}里的菜",
                "来{v}一下{r}",
                "用勺子在{r}里{v}",
                "继续在{r}里{v}",
                "在{r}中{v}",
            ),
            "搅拌",
            ("bowl", "pan"),
        ),
        CookingAction(
            "take_out",
            (
                "take out {a_o}",
                "take the {o} out",
                "now I'm taking out {a_o}",
                "get {a_o} out of the cupboard",
                "let's take out the {o}",
                "taking out the {o}",
                "grab {a_o}",
                "I take out the {o}",
                "pull out {a_o}",
                "bring out the {o}",
            ),
            (
                "取出{o}",
                "拿出{o}",
                "现在取出{o}",
                "我们把{o}拿出来",
                "把{o}取出来",
                "从柜子里拿出{o}",
                "取一个{o}",
                "来拿{o}吧",
                "拿一个{o}出来",
                "先取出{o}",
            ),
            "取出",
            ("plate", "can", "bowl", "pan"),
        ),
        CookingAction(
            "wash",
            (
                "wash the {o}",
                "wash {a_o}",
                "now I'm washing the {o}",
                "rinse the {o}",
                "let's wash the {o}",
                "washing {a_o} under the tap",
                "clean the {o} with water",
                "I rinse {a_o}",
                "give the {o} a wash",
                "run the {o} under water",
            ),
            (
                "洗{o}",
                "洗一下{o}",
                "现在我在洗{o}",
                "我们来洗{o}",
                "把{o}洗干净",
                "用水冲洗{o}",
                "洗一个{o}",
                "来洗{o}吧",
                "清洗{o}",
                "把{o}冲一冲",
            ),
            "洗",
            ("apple", "cucumber", "carrot", "lemon", "lime", "orange"),
        ),
        CookingAction(
            "grate",
            (
                "grate the {o}",
                "grate {a_o}",
                "now I'm grating the {o}",
                "shred the {o}",
                "let's grate the {o}",
                "grating {a_o}",
                "rub the {o} on the grater",
                "I grate the {o}",
                "shred {a_o} finely",
                "time to grate the {o}",
            ),
            (
                "磨碎{o}",
                "把{o}磨碎",
                "现在我在磨{o}",
                "我们来擦{o}丝",
                "把{o}擦成丝",
                "用擦子擦{o}",
                "磨一个{o}",
                "来磨碎{o}吧",
                "把{o}磨成碎末",
                "先把{o}擦碎",
            ),
            "磨碎",
            ("carrot", "apple", "cucumber", "onion"),
        ),
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
    receiver = f"the {OBJECTS[cls.receiver].en[0]}" if cls.receiver else ""
    return {"o": name, "a_o": a_o, "r": receiver}


def _zh_verb(cls: CookingClass) -> str:
    if cls.action == "peel":
        return "剥" if cls.obj in _ZH_PEEL_BY_HAND else "削"
    if cls.action == "stir":
        return _ZH_STIR[cls.obj]
    return ACTIONS[cls.action].zh_verb


def phrasings(cls: CookingClass, lang: str) -> list[str]:
    """All distinct phrasings of a class in a language ('en' or 'zh'), canonical first.

    Every template of the action is combined with every name of the object, so the list is
    long enough for many distinct utterances per class.
    """
    action, obj = ACTIONS[cls.action], OBJECTS[cls.obj]
    out: list[str] = []
    if lang == "en":
        for name in obj.en:
            for template in action.en:
                out.append(template.format(**_en_forms(cls, name)))
    elif lang == "zh":
        receiver = OBJECTS[cls.receiver].zh[0] if cls.receiver else ""
        for name in obj.zh:
            for template in action.zh:
                out.append(template.format(o=name, r=receiver, v=_zh_verb(cls)))
    else:
        raise VocabularyError(f"unknown language {lang!r}: valid languages are en, zh")
    return list(dict.fromkeys(out))  # drop repeats, keep order
