"""The decision table of `enforcement.decision.decide`: pure, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.enforcement.decision import (
    DecisionConfig,
    ImageUse,
    decide,
    display,
    required_digests,
    short_reason,
)
from chalicelib.image.reference import parse_reference
from chalicelib.image.registry_config import RegistryConfig
from chalicelib.store_models import ChildImage, ImageRecord, SignatureRecord, TrustFacts

KEY = "awskms:///alias/lifeguard-signing"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
CONFIG = DecisionConfig(
    signing_key=KEY,
    registries=RegistryConfig(allowlist="ghcr.io", accounts="123456789012", region="us-east-1"),
)


def dg(n: int) -> str:
    return f"sha256:{n:064x}"


def image(n: int, gate: str | None = "pass", reasons: list[str] | None = None) -> ImageRecord:
    return ImageRecord.model_validate({"digest": dg(n), "gate": gate, "reasons": reasons or []})


def sig(n: int, **extra: object) -> SignatureRecord:
    return SignatureRecord.model_validate(
        {
            "digest": dg(n),
            "key": KEY,
            "signed_at": T0,
            "signature_tag": f"sha256-{n:064x}.sig",
            "payload_sha256": "ab" * 32,
            **extra,
        }
    )


def use(n: int | None, repo: str = "payments/api", registry: str = ECR, tag: str = "v1") -> ImageUse:
    return ImageUse(
        container="app", image=f"{registry}/{repo}:{tag}", digest=dg(n) if n is not None else None
    )


def name(n: int, repo: str = "payments/api", registry: str = ECR) -> str:
    return f"{registry}/{repo}@{dg(n)}"


SIGNED = {dg(1): TrustFacts(digest=dg(1), image=image(1), signature=sig(1))}


@pytest.mark.parametrize(
    ("facts", "config", "reasons"),
    [
        pytest.param(SIGNED, CONFIG, [], id="signed+pass"),
        pytest.param(
            {dg(1): TrustFacts(digest=dg(1), image=image(1))},
            CONFIG,
            [f"image {name(1)} is not signed by {KEY}"],
            id="unsigned",
        ),
        pytest.param(
            {dg(1): TrustFacts(digest=dg(1), image=image(1, "fail", ["2 vulnerabilities at or above HIGH"]))},
            CONFIG,
            [
                f"image {name(1)} failed its gate: 2 vulnerabilities at or above HIGH",
                f"image {name(1)} is not signed by {KEY}",
            ],
            id="failed-gate",
        ),
        pytest.param(
            {
                dg(1): TrustFacts(
                    digest=dg(1),
                    image=image(1),
                    signature=sig(
                        1, flagged=True, flagged_at=T0, flag_reasons=["CVE-2026-1 is known exploited"]
                    ),
                )
            },
            CONFIG,
            [
                f"image {name(1)} is signed by {KEY} but failed its gate after signing: "
                "CVE-2026-1 is known exploited"
            ],
            id="flagged-signature",
        ),
        pytest.param(
            {
                dg(1): TrustFacts(
                    digest=dg(1),
                    image=image(1, "fail", ["secret found"]),
                    signature=sig(1, flagged=True, flag_reasons=["secret found"]),
                )
            },
            CONFIG,
            [f"image {name(1)} failed its gate: secret found"],
            id="flagged-and-failing-says-it-once",
        ),
        pytest.param(
            {},
            CONFIG,
            [f"image {name(1)} was never scanned", f"image {name(1)} is not signed by {KEY}"],
            id="never-scanned",
        ),
        pytest.param(
            SIGNED,
            DecisionConfig(registries=CONFIG.registries),
            [f"image {name(1)} is not signed: no signing key is configured (LIFEGUARD_SIGNING_KEY)"],
            id="no-signing-key",
        ),
        pytest.param(
            {dg(1): TrustFacts(digest=dg(1), image=image(1, None), signature=sig(1))},
            CONFIG,
            [f"image {name(1)} has not finished scanning"],
            id="index-with-pending-platform",
        ),
    ],
)
def test_decision_table(facts: dict[str, TrustFacts], config: DecisionConfig, reasons: list[str]) -> None:
    decision = decide([use(1)], facts, config)
    assert (decision.allowed, decision.reasons) == (not reasons, reasons)
    (verdict,) = decision.per_image
    assert (verdict.container, verdict.image, verdict.digest, verdict.allowed) == (
        "app",
        name(1),
        dg(1),
        not reasons,
    )


def test_registry_not_on_the_allow_list_ends_the_checks() -> None:
    decision = decide([use(1, "x/miner", "evil.io")], SIGNED, CONFIG)
    assert (decision.allowed, decision.reasons) == (
        False,
        [f"registry evil.io is not on the allow-list (image evil.io/x/miner@{dg(1)})"],
    )


def test_docker_hub_short_names_are_docker_io() -> None:
    decision = decide([ImageUse(image=f"nginx@{dg(1)}")], SIGNED, CONFIG)
    assert decision.reasons == [
        f"registry docker.io is not on the allow-list (image docker.io/library/nginx@{dg(1)})"
    ]


def test_tag_only_is_refused_and_marked_unpinned() -> None:
    decision = decide([use(None, registry="ghcr.io", repo="acme/web", tag="1.2")], {}, CONFIG)
    assert decision.reasons == [
        "image ghcr.io/acme/web:1.2 has no digest: pin it by digest "
        "(a tag can move; Lifeguard decides on digests)"
    ]
    assert (decision.allowed, decision.undecided) == (False, True)


def test_the_digest_in_the_reference_counts_and_the_runtime_digest_wins() -> None:
    in_ref = ImageUse(image=f"{ECR}/payments/api@{dg(1)}")
    runtime_wins = ImageUse(image=f"{ECR}/payments/api@{dg(9)}", digest=dg(1))
    assert decide([in_ref, runtime_wins], SIGNED, CONFIG).allowed is True
    assert required_digests([in_ref, runtime_wins, use(None), use(2)]) == [dg(1), dg(2)]


def test_one_bad_image_refuses_the_whole_workload_and_reasons_keep_container_order() -> None:
    decision = decide([use(1), ImageUse(container="sidecar", image="Not A Ref"), use(3)], SIGNED, CONFIG)
    assert decision.allowed is False
    assert [v.allowed for v in decision.per_image] == [True, False, False]
    assert decision.reasons[0].startswith("image 'Not A Ref' is not a valid image reference: ")
    assert decision.reasons[1:] == [
        f"image {name(3)} was never scanned",
        f"image {name(3)} is not signed by {KEY}",
    ]
    assert decision.undecided is False


def test_an_index_with_a_derived_gate_decides_like_an_image() -> None:
    index = ImageRecord.model_validate(
        {"digest": dg(5), "kind": "index", "gate": "pass", "children": [ChildImage(digest=dg(6))]}
    )
    facts = {dg(5): TrustFacts(digest=dg(5), image=index, signature=sig(5))}
    assert decide([use(5)], facts, CONFIG).allowed is True


def test_no_images_is_allowed() -> None:
    assert decide([], {}, CONFIG).model_dump() == {"allowed": True, "reasons": [], "per_image": []}


def test_display_forms() -> None:
    assert display(parse_reference("ghcr.io/acme/web")) == "ghcr.io/acme/web:latest"
    assert display(parse_reference(f"ghcr.io/acme/web:1@{dg(1)}")) == f"ghcr.io/acme/web@{dg(1)}"


def test_short_reason_fits_ecs_255_characters() -> None:
    assert short_reason(["a", "b"]) == "Lifeguard: a; b"
    long = [f"image {name(n)} is not signed by {KEY}" for n in range(1, 4)]
    text = short_reason(long)
    assert text == f"Lifeguard: {long[0]} (+2 more)"
    assert len(text) <= 255
    huge = short_reason(["x" * 400, "y"])
    assert len(huge) == 255
    assert huge.endswith("... (+1 more)")
