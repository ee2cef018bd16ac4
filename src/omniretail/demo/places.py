"""Real places for the demo retailer: distribution centres and high-street stores in the UK."""

from __future__ import annotations

# (code, name, type, latitude, longitude)
LOCATIONS: list[tuple[str, str, str, float, float]] = [
    ("dc-daventry", "DC Daventry", "warehouse", 52.2568, -1.1553),
    ("dc-doncaster", "DC Doncaster", "warehouse", 53.5228, -1.1285),
    ("dc-avonmouth", "DC Avonmouth", "warehouse", 51.5050, -2.6960),
    ("st-london-oxford", "London Oxford Street", "store", 51.5154, -0.1419),
    ("st-london-covent", "London Covent Garden", "store", 51.5117, -0.1240),
    ("st-manchester", "Manchester Market Street", "store", 53.4831, -2.2417),
    ("st-birmingham", "Birmingham Bullring", "store", 52.4778, -1.8942),
    ("st-leeds", "Leeds Briggate", "store", 53.7973, -1.5418),
    ("st-glasgow", "Glasgow Buchanan Street", "store", 55.8617, -4.2535),
    ("st-edinburgh", "Edinburgh Princes Street", "store", 55.9520, -3.1960),
    ("st-bristol", "Bristol Cabot Circus", "store", 51.4584, -2.5850),
    ("st-liverpool", "Liverpool ONE", "store", 53.4040, -2.9890),
    ("st-cardiff", "Cardiff Queen Street", "store", 51.4816, -3.1750),
    ("st-newcastle", "Newcastle Northumberland Street", "store", 54.9760, -1.6100),
    ("st-brighton", "Brighton Churchill Square", "store", 50.8240, -0.1460),
    ("lk-kings-cross", "King's Cross parcel locker", "locker", 51.5308, -0.1238),
]

# (code, name, type): all in GBP, GB, en-GB
CHANNELS: list[tuple[str, str, str]] = [
    ("web", "Web shop", "web"),
    ("app", "Mobile app", "app"),
    ("pos", "Store registers", "store"),
    ("instagram", "Instagram shop", "social"),
    ("marketplace", "Marketplace", "marketplace"),
]
