"""Read what the rules need: one BatchGetItem for every digest's scan summary and signature
(`ScanStore.trust_facts`), then, only for multi-arch indexes, their children's summaries
(`ScanStore.get_image`: the index's SCAN item has no gate of its own, it is derived from the
platforms). A single-arch pod is one DynamoDB call."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.store import ScanStore
from chalicelib.store_models import TrustFacts


def load_facts(store: ScanStore, digests: Sequence[str], key: str | None) -> dict[str, TrustFacts]:
    facts = store.trust_facts(digests, key) if digests else {}
    for digest, fact in facts.items():
        if fact.image is not None and fact.image.kind == "index":
            resolved = store.get_image(digest)
            if resolved is not None:
                fact.image = resolved
    return facts
