"""Small built-in word lists: enough variety for plausible receipts, no files or downloads needed."""

from __future__ import annotations

# fmt: off
STORE_FIRST: tuple[str, ...] = (
    "FRESH", "CITY", "GREEN", "SUNNY", "CORNER", "GOLDEN", "BLUE", "HAPPY", "NORTH", "RIVER",
    "MAPLE", "OAK", "PRIME", "DAILY", "LUCKY", "STAR", "METRO", "VALLEY", "HARBOR", "PINE",
    "URBAN", "ROYAL", "EAGLE", "SILVER", "FAMILY", "UNITED", "KING'S", "MARKET", "OCEAN", "SUMMIT",
)
STORE_LAST: tuple[str, ...] = (
    "MART", "MARKET", "GROCERY", "DELI", "CAFE", "PHARMACY", "HARDWARE", "BAKERY", "FOODS",
    "SUPERSTORE", "STORE", "KITCHEN", "BISTRO", "OUTLET", "EXPRESS", "TRADING", "SUPPLY", "DINER",
)
STORE_SUFFIX: tuple[str, ...] = ("", "", "", "", "INC.", "LLC", "CO.", "SDN BHD", "& SONS", "24H")

STREETS: tuple[str, ...] = (
    "MAIN", "OAK", "ELM", "PARK", "LAKE", "HILL", "CEDAR", "WASHINGTON", "MARKET", "CHURCH",
    "HIGH", "MILL", "RIVER", "SUNSET", "BROADWAY", "JALAN AMPANG", "KING", "VICTORIA", "STATION",
)
STREET_TYPES: tuple[str, ...] = ("ST", "AVE", "RD", "BLVD", "LANE", "DR", "WAY", "PLAZA")
CITIES: tuple[str, ...] = (
    "SPRINGFIELD", "RIVERSIDE", "FAIRVIEW", "MADISON", "GEORGETOWN", "KUALA LUMPUR", "PORTLAND",
    "CLINTON", "SALEM", "FRANKLIN", "BRISTOL", "OXFORD", "AUBURN", "MILTON", "DOVER",
)
REGIONS: tuple[str, ...] = ("CA", "NY", "TX", "WA", "OR", "IL", "MA", "SELANGOR", "ON", "NSW")

ITEM_ADJECTIVES: tuple[str, ...] = (
    "ORGANIC", "FRESH", "WHOLE", "LOW FAT", "LARGE", "SMALL", "SWEET", "SPICY", "FROZEN", "GREEN",
    "RED", "DARK", "LIGHT", "CLASSIC", "PREMIUM", "BABY", "SLICED", "ROASTED", "SMOKED", "HOT",
)
ITEM_NOUNS: tuple[str, ...] = (
    "MILK", "BREAD", "EGGS", "BANANAS", "APPLES", "COFFEE", "TEA", "BUTTER", "CHEESE", "YOGURT",
    "RICE", "PASTA", "TOMATOES", "ONIONS", "POTATOES", "CHICKEN", "BEEF", "SALMON", "TUNA",
    "CEREAL", "JUICE", "WATER", "SODA", "CHIPS", "COOKIES", "CHOCOLATE", "SOAP", "SHAMPOO",
    "TISSUE", "BATTERIES", "CROISSANT", "LATTE", "MUFFIN", "SANDWICH", "NOODLES", "SAUCE",
    "OLIVE OIL", "FLOUR", "SUGAR", "HONEY", "CARROTS", "LETTUCE", "AVOCADO", "GRAPES", "LEMONS",
)
ITEM_UNITS: tuple[str, ...] = (
    "", "", "", "1L", "2L", "500G", "1KG", "12PK", "6PK", "250ML", "LB", "XL", "200G", "2PC",
)

CASHIERS: tuple[str, ...] = (
    "ANNA", "JOHN", "MARIA", "DAVID", "LISA", "AHMAD", "WEI", "SARAH", "MIKE", "PRIYA", "TOM", "NOOR",
)
PAYMENTS: tuple[str, ...] = ("CASH", "VISA", "MASTERCARD", "DEBIT", "AMEX", "CREDIT CARD")

FOOTERS: tuple[str, ...] = (
    "THANK YOU FOR SHOPPING!", "PLEASE COME AGAIN", "THANK YOU", "HAVE A NICE DAY",
    "KEEP YOUR RECEIPT", "RETURNS WITHIN 30 DAYS", "GOODS SOLD ARE NOT RETURNABLE",
    "THANK YOU FOR YOUR VISIT", "SEE YOU SOON!", "CUSTOMER COPY", "ALL PRICES INCLUDE GST",
)
# fmt: on
