"""BigEarthNet land-cover nomenclatures: the 43 CORINE labels of the archive and the 19-class set (BEN-19).

BEN-19 (Sumbul et al., "BigEarthNet-MM", 2021) merges the 43 labels into 19 and drops those that cannot
be told apart from Sentinel-2 patches (e.g. airports, port areas, bare rock, burnt areas, intertidal flats).
"""

from __future__ import annotations

LAND_COVER_LABELS: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

# BEN-43 label -> BEN-19 label, or None where BEN-19 drops it.
BEN43_TO_BEN19: dict[str, str | None] = {
    "Continuous urban fabric": "Urban fabric",
    "Discontinuous urban fabric": "Urban fabric",
    "Industrial or commercial units": "Industrial or commercial units",
    "Road and rail networks and associated land": None,
    "Port areas": None,
    "Airports": None,
    "Mineral extraction sites": None,
    "Dump sites": None,
    "Construction sites": None,
    "Green urban areas": None,
    "Sport and leisure facilities": None,
    "Non-irrigated arable land": "Arable land",
    "Permanently irrigated land": "Arable land",
    "Rice fields": "Arable land",
    "Vineyards": "Permanent crops",
    "Fruit trees and berry plantations": "Permanent crops",
    "Olive groves": "Permanent crops",
    "Annual crops associated with permanent crops": "Permanent crops",
    "Pastures": "Pastures",
    "Complex cultivation patterns": "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation": "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas": "Agro-forestry areas",
    "Broad-leaved forest": "Broad-leaved forest",
    "Coniferous forest": "Coniferous forest",
    "Mixed forest": "Mixed forest",
    "Natural grassland": "Natural grassland and sparsely vegetated areas",
    "Sparsely vegetated areas": "Natural grassland and sparsely vegetated areas",
    "Moors and heathland": "Moors, heathland and sclerophyllous vegetation",
    "Sclerophyllous vegetation": "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland/shrub": "Transitional woodland, shrub",
    "Beaches, dunes, sands": "Beaches, dunes, sands",
    "Bare rock": None,
    "Burnt areas": None,
    "Inland marshes": "Inland wetlands",
    "Peatbogs": "Inland wetlands",
    "Salt marshes": "Coastal wetlands",
    "Salines": "Coastal wetlands",
    "Intertidal flats": None,
    "Water courses": "Inland waters",
    "Water bodies": "Inland waters",
    "Coastal lagoons": "Marine waters",
    "Estuaries": "Marine waters",
    "Sea and ocean": "Marine waters",
}


class UnknownLabelError(ValueError):
    """A label in neither nomenclature: the message names it, where it was found and the valid names."""


def to_ben19(labels: list[str], where: str) -> list[str]:
    """BEN-43 or BEN-19 names -> sorted unique BEN-19 names; an unknown name is an error naming `where`."""
    converted = set()
    for label in labels:
        if label in LAND_COVER_LABELS:
            converted.add(label)
        elif label in BEN43_TO_BEN19:
            if BEN43_TO_BEN19[label] is not None:
                converted.add(BEN43_TO_BEN19[label])
        else:
            raise UnknownLabelError(
                f"unknown land-cover label {label!r} in {where}: expected one of the 43 BigEarthNet (CORINE) "
                f"labels or the 19 BEN-19 labels (see include/aerial_pretraining/labels.py); fix the metadata"
            )
    return sorted(converted, key=LAND_COVER_LABELS.index)


def one_hot(labels: list[str], where: str = "labels") -> list[float]:
    """A 19-long 0/1 vector of BEN-19 labels (the seed's get_multi_onehot_labels)."""
    vector = [0.0] * len(LAND_COVER_LABELS)
    for label in labels:
        if label not in LAND_COVER_LABELS:
            raise UnknownLabelError(
                f"unknown BEN-19 label {label!r} in {where}; expected one of {list(LAND_COVER_LABELS)}"
            )
        vector[LAND_COVER_LABELS.index(label)] = 1.0
    return vector
