"""Product categories derived from product names by keyword.

Real transaction files rarely carry a category; UCI Online Retail has only a
free-text ``Description``. ``categorize`` gives each name one category from
``KEYWORD_TABLE``: the *first* category in table order with a keyword that
occurs in the name as whole words wins, so the order encodes precedence
("CHRISTMAS LIGHTS" is CHRISTMAS, "T-LIGHT HOLDER" is LAMPS, "LUNCH BAG" is
BAGS, "CAKE TIN" is KITCHENWARE before STORAGE sees TIN). Names are matched
upper-cased with punctuation turned into spaces, and every keyword also matches
its plural in -S or -ES. A name no keyword matches is ``UNCATEGORIZED``;
products that are not merchandise (postage, fees, adjustments) are
``NON_MERCHANDISE`` whatever their name says.

Where a category exists in ``seeds/category_attributes.csv`` (LAMPS, DECOR,
KITCHENWARE, STORAGE, TEXTILES, BATHROOM) the same name is used; the others are
giftware families that the furniture-store seed does not have.

The table was tuned on the UCI giftware catalogue: measure coverage with
``python bench/bench_import.py`` (it prints the distribution) before relying
on it for another catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

UNCATEGORIZED = "UNCATEGORIZED"
NON_MERCHANDISE = "NON_MERCHANDISE"

# (category, keywords), in precedence order.
KEYWORD_TABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "CHRISTMAS",
        (
            "CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWMAN", "SNOWFLAKE",
            "BAUBLE", "NATIVITY", "TINSEL", "NOEL", "JINGLE BELL", "STOCKING", "ANGEL",
            "SNOW GLOBE",
        ),
    ),
    (
        "SEASONAL",
        ("EASTER", "HALLOWEEN", "VALENTINE", "MOTHERS DAY", "FATHERS DAY", "EGG HUNT"),
    ),
    (
        "PARTY",
        (
            "PARTY", "BUNTING", "BALLOON", "PAPER CHAIN", "CONFETTI", "PARTY BAG",
            "CAKE CANDLE", "BIRTHDAY CANDLE", "PINATA", "PAPER LANTERN", "FLAG", "PENNANT",
            "DISCO BALL", "COCKTAIL", "INFLATABLE", "ROSETTE", "GRASS SKIRT", "SOMBRERO",
        ),
    ),
    (
        "ACCESSORIES",
        (
            "NECKLACE", "NECKL", "NECKLAC", "BRACELET", "EARRINGS", "EARRING", "RING",
            "CHARM", "PENDANT", "BEAD", "BROOCH", "DIAMANTE", "HAIR", "HAIRCLIP",
            "HAIRBAND", "HAIR SLIDE", "BANGLE", "ANKLET", "UMBRELLA", "KEYRING",
            "KEY RING", "SUNGLASSES", "COMPACT MIRROR", "WATCH", "BLING", "JEWELLERY",
            "JEWELLED", "PASSPORT COVER", "LUGGAGE TAG", "HAIRCOMB", "COMB", "TIARA",
            "ALICE BAND", "HAIR GRIP", "HAIRGRIP", "CUFF", "BELT", "BUTTON", "BADGE",
            "KEY FOB", "HEADPHONES", "LARIAT", "HAIRSLIDE", "PHONE CHAR", "BRACLET",
            "CHOKER", "KEY CHAIN",
        ),
    ),
    (
        "LAMPS",
        (
            "LIGHT", "LIGHTS", "LAMP", "LAMPSHADE", "LANTERN", "CANDLE", "CANDLEHOLDER",
            "CANDLESTICK", "T LIGHT", "TLIGHT", "TEA LIGHT", "TEALIGHT", "NIGHTLIGHT",
            "CHANDELIER", "TORCH", "LED", "VOTIVE", "CANDLEPOT", "MATCHES", "CANDLESTAND",
        ),
    ),
    (
        "FURNITURE",
        (
            "CHAIR", "STOOL", "SIDE TABLE", "FOLDING TABLE", "COFFEE TABLE", "CABINET",
            "SHELF", "SHELVES", "CHEST OF DRAWERS", "DRAWER UNIT", "BENCH", "SIDEBOARD",
            "WARDROBE", "DRESSER", "SOFA", "BED", "TROLLEY", "SCREEN", "BOOKCASE",
            "MAGAZINE RACK", "COAT RACK", "HAT STAND", "CUPBOARD", "POUFFE", "LOVE SEAT",
            "ROUND TABLE", "TABLE RECT", "SEAT",
        ),
    ),
    (
        "BAGS",
        (
            "BAG", "HANDBAG", "SHOPPER", "PURSE", "WALLET", "TOTE", "BACKPACK", "RUCKSACK",
            "WASHBAG", "SATCHEL", "BAGS",
        ),
    ),
    (
        "TEXTILES",
        (
            "CUSHION", "TEA TOWEL", "TOWEL", "APRON", "OVEN GLOVE", "BLANKET", "THROW",
            "QUILT", "HOT WATER BOTTLE", "DOORMAT", "CURTAIN", "FABRIC", "TABLECLOTH",
            "TABLE CLOTH", "CROCHET", "KNITTED", "SCARF", "HAT", "GLOVES", "SLIPPERS",
            "PEG BAG", "PONCHO", "RAIN HAT", "FELT", "FLANNEL", "BEDSPREAD", "PILLOW",
            "TABLE RUNNER", "OILCLOTH", "WOOLLY", "HAND WARMER", "EMBROIDERED", "MAT",
            "PATCHES", "SLIPPER", "FILLER PAD", "SOCK", "EAR MUFF", "IRONING BOARD",
        ),
    ),
    (
        "KITCHENWARE",
        (
            "MUG", "CUP", "SAUCER", "TEACUP", "TEAPOT", "TEA SET", "PLATE", "BOWL", "DISH",
            "CUTLERY", "SPOON", "FORK", "KNIFE", "KNIVES", "CAKESTAND", "CAKE STAND",
            "CAKE CASE", "CAKE TIN", "CAKE", "CAKES", "BAKING", "TRAY", "JUG", "BEAKER",
            "WINE GLASS", "DRINKING GLASS", "SHOT GLASS", "TUMBLER", "BOTTLE", "JAR",
            "LUNCH BOX", "LUNCHBOX", "SNACK BOX", "PANTRY", "KITCHEN", "CHOPPING BOARD",
            "COASTER", "PLACEMAT", "NAPKIN", "EGG CUP", "MOULD", "ICE LOLLY", "SCALES",
            "MEASURING", "TEA", "COFFEE", "SUGAR", "MILK", "BISCUIT", "BREAD", "BUTTER",
            "FRYING PAN", "SAUCEPAN", "PAN", "COLANDER", "GRATER", "WHISK", "INFUSER",
            "TOAST", "TOASTRACK", "SPATULA", "STRAW", "CHOPSTICK", "SALT", "PEPPER",
            "DOILY", "DOILIES", "RECIPE", "JAM", "CUPCAKE", "POPCORN", "SWEETIE",
            "GLASSES", "CARAFE", "DECANTER", "FLASK", "ICE CUBE", "TEATIME",
            "COOKIE CUTTER", "FOOD", "PICNIC", "HAMPER", "CAFETIERE", "CANDY",
            "DINNER", "BREAKFAST", "CONDIMENT", "OVEN", "TRIVET", "ROLLING PIN", "EGG CUP",
            "EGG HOUSE", "SQUEEZER", "PLATTER", "FRUITBOWL", "CHALICE", "GOBLET",
            "CHAMPAGNE GLASS", "LOLLY MAKER", "COOKING SET",
        ),
    ),
    (
        "STORAGE",
        (
            "STORAGE", "BOX", "BOXES", "TIN", "TINS", "BASKET", "CRATE", "TRUNK",
            "CONTAINER", "BIN", "CADDY", "TIDY", "ORGANISER", "CHEST", "DRAWER", "RACK",
            "BUCKET", "CASE", "POUCH", "HOLDER", "PEG", "CLOTHES PEG", "HANGER",
        ),
    ),
    (
        "TOYS",
        (
            "TOY", "JIGSAW", "PUZZLE", "DOLL", "GAME", "PLAYING CARDS", "SKITTLES",
            "SPINNING TOP", "YOYO", "KITE", "TEDDY", "MARBLES", "BUBBLES", "SKIPPING ROPE",
            "COLOURING", "PLAYHOUSE", "DOMINOES", "DOMINO", "DICE", "CHESS", "FELTCRAFT",
            "CRAFT", "SEWING KIT", "KNITTING", "SPACEBOY", "PAINT SET", "DRESSING UP",
            "BINGO", "LUDO", "SNAKES", "BOOMERANG", "MAGIC", "TATTOOS", "PLAYHOUSE",
            "SOLDIER", "ROBOT", "HELICOPTER", "WOODEN BLOCK", "ABC", "NOVELTY",
            "CHILDRENS", "CHILDS", "KIDS", "BABY", "BIB", "RATTLE", "PUPPET", "MASK",
            "ROCKING HORSE", "MODELLING", "CANVAS", "NAUGHTS", "FLYING DISC", "CREEPY",
            "FOR CHILDREN", "SPORTING", "GLIDER", "RADIO", "WINDSOCK",
            "CROWN", "WAND", "STICKER BOOK", "SPACE", "POCKET MONEY",
        ),
    ),
    (
        "STATIONERY",
        (
            "CARD", "CARDS", "GREETING CARD", "PAPER", "WRAP", "WRAPPING", "GIFT WRAP",
            "TISSUE PAPER", "NOTEBOOK", "NOTEPAD", "NOTE BOOK", "PEN", "PENCIL", "CRAYON",
            "ERASER", "RUBBER", "RULER", "STICKER", "TAPE", "ENVELOPE", "CALENDAR",
            "DIARY", "JOURNAL", "SKETCHBOOK", "BOOK", "BOOKMARK", "LABEL", "GIFT TAG",
            "TAG", "STAMP", "POSTCARD", "MEMO", "ALBUM", "RIBBON", "CHALK", "ORIGAMI",
            "SCRAPBOOK", "CLIPBOARD", "FOLDER", "FILE", "MAGNET", "SHARPENER", "STENCIL",
            "BLACKBOARD", "CHALKBOARD", "NOTELETS", "WRITING SET", "DESK", "PAPERWEIGHT",
            "SCISSOR", "GLUE", "STAPLER", "TRANSFER", "STATIONERY", "MEMOBOARD",
            "CALCULATOR", "BLACK BOARD", "DOORSIGN",
        ),
    ),
    (
        "GARDEN",
        (
            "GARDEN", "PLANT", "PLANTER", "FLOWER POT", "POT", "WATERING CAN",
            "BIRD HOUSE", "BIRDHOUSE", "BIRD FEEDER", "FEEDER", "BIRD TABLE", "HERB",
            "SEED", "TROWEL", "GNOME", "SHED", "PARASOL", "HAMMOCK", "GREENHOUSE",
            "LAWN", "HOSE", "SPADE", "OUTDOOR", "BIRDBATH", "BIRD BATH", "GROW",
            "WINDMILL", "THERMOMETER", "NESTING BOX", "KNEELING", "FLY SWAT",
            "HEN HOUSE", "MUSHROOM", "TOADSTOOL", "SPIRIT LEVEL", "BICYCLE",
        ),
    ),
    (
        "BATHROOM",
        (
            "SOAP", "BATH", "BATHROOM", "TOILET", "TISSUE", "MAKE UP", "MAKEUP",
            "COSMETIC", "LIP GLOSS", "NAIL", "PLASTERS", "TOOTHBRUSH", "SHOWER",
            "SPONGE", "TOILETRY", "HAND CREAM", "VANITY", "FIRST AID", "BASIN",
        ),
    ),
    (
        "DECOR",
        (
            "DECORATION", "ORNAMENT", "SIGN", "PLAQUE", "FRAME", "PICTURE", "PRINT",
            "POSTER", "MIRROR", "CLOCK", "VASE", "GARLAND", "WREATH", "HANGING",
            "WALL ART", "ART", "HOOK", "KNOB", "DOORSTOP", "DOOR STOP", "CHIME", "MOBILE",
            "FLOWER", "ARTIFICIAL", "FEATHER", "INCENSE", "FRAGRANCE", "DIFFUSER",
            "OIL BURNER", "BURNER", "POTPOURRI", "SACHET", "DOOR HANGER", "LETTERS",
            "BELL", "FIGURE", "STATUE", "GLOBE", "TILE", "BUNNY", "HEART", "HEARTS",
            "DOORKNOB", "DOOR KNOB", "WALL", "DECORATIVE", "PHOTO", "CHIMES",
            "BLOCK WORD", "STRING", "BIRD", "BUTTERFLY", "STAR", "SCULPTURE", "PLANTS",
            "PEBBLE", "HOME", "SKULL", "WICKER", "DRAWER KNOB", "TASSEL", "POMPOM",
            "FAN", "CRYSTAL", "CLOCHE", "FLYING DUCKS", "PORCELAIN ROSE", "BUDDHA",
            "PIGGY BANK", "ASHTRAY", "ICICLE", "PAINTED METAL", "RABBIT",
        ),
    ),
)

_NORMALIZE = re.compile(r"[^A-Z0-9]+")


def _normalize(text: str) -> str:
    return " " + _NORMALIZE.sub(" ", text.upper()).strip() + " "


def _compile(keywords: Iterable[str]) -> re.Pattern[str]:
    # Longest first so "TEA TOWEL" is tried before "TEA"; plural -S/-ES allowed.
    alternatives = sorted({_normalize(k).strip() for k in keywords}, key=len, reverse=True)
    body = "|".join(re.escape(k) for k in alternatives)
    return re.compile(rf" (?:{body})(?:E?S)? ")


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, _compile(keywords)) for category, keywords in KEYWORD_TABLE
)

CATEGORIES: tuple[str, ...] = (
    *(category for category, _ in KEYWORD_TABLE),
    UNCATEGORIZED,
    NON_MERCHANDISE,
)


def categorize(name: str | None) -> str:
    """The category of one product name (``UNCATEGORIZED`` when none matches)."""
    if not name:
        return UNCATEGORIZED
    text = _normalize(name)
    for category, pattern in _PATTERNS:
        if pattern.search(text):
            return category
    return UNCATEGORIZED
