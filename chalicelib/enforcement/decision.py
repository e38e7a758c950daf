"""The prevent-running rules, in one pure function that the ECS handler and the admission webhook
both call: may these images run?

An image may run when all of these hold (each failure is one human-readable reason):
1. its reference parses and its registry is on the allow-list (`RegistryConfig.is_allowed`: the
   same list that says which registries Lifeguard may pull from, so an image Lifeguard could never
   have scanned is refused for that reason alone, not for the consequences);
2. it is pinned to a digest (ECS `imageDigest`, or `@sha256:...` in the reference). A tag-only
   reference is refused: a tag can move between the check and the pull, and resolving it would
   mean contacting the registry on the admission path. Callers that may get a digest later
   (an ECS PENDING event) defer instead of deciding (`Decision.undecided`);
3. it was scanned, and its gate passed (a multi-arch index passes when every platform passed;
   a platform still pending means "not finished scanning");
4. it carries a signature by the configured key (`LIFEGUARD_SIGNING_KEY`) that was not flagged
   (a flag means the image failed its gate after it was signed). With no key configured, no image
   is signed: every image is refused.

Rules 1 and 2 end the checks for that image (nothing is known about it); 3 and 4 are both
reported, so a reader sees "never scanned" and "not signed" together. The decision itself is
mode-free: whether a refusal stops anything (`enforce`), is only reported (`audit`) or is a
dry-run is the caller's business."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import InputError
from chalicelib.image.reference import Reference, parse_reference
from chalicelib.image.registry_config import RegistryConfig
from chalicelib.store_models import TrustFacts

#: ECS `StopTask` accepts a reason of up to 255 characters
STOP_REASON_MAX = 255


class ImageUse(BaseModel):
    """One container's image as the runtime reports it: the reference as written (`image`) and,
    when the runtime resolved it, the digest that actually runs (ECS `imageDigest`)."""

    model_config = ConfigDict(frozen=True)

    container: str | None = None
    image: str
    digest: str | None = None


class DecisionConfig(BaseModel):
    """What the rules depend on besides the facts: the signing key and the registry allow-list."""

    model_config = ConfigDict(frozen=True)

    signing_key: str | None = None
    registries: RegistryConfig = Field(default_factory=RegistryConfig)


class ImageVerdict(BaseModel):
    """The decision about one container's image. `image` is the display form used in reasons:
    `registry/repository@digest`, or `registry/repository:tag` when there is no digest."""

    container: str | None = None
    image: str
    digest: str | None = None
    allowed: bool
    #: the image has no digest yet (tag only): refused, but a caller may wait for one
    unpinned: bool = False
    reasons: list[str] = Field(default_factory=list)


class Decision(BaseModel):
    """Allowed when every image is; `reasons` are all images' reasons, in container order."""

    allowed: bool
    reasons: list[str] = Field(default_factory=list)
    per_image: list[ImageVerdict] = Field(default_factory=list)

    @property
    def undecided(self) -> bool:
        """Refused only because some image has no digest yet (a later event may carry it)."""
        refused = [v for v in self.per_image if not v.allowed]
        return bool(refused) and all(v.unpinned for v in refused)

    @property
    def images(self) -> list[str]:
        return [v.image for v in self.per_image]


def _parse(use: ImageUse) -> Reference:
    ref = parse_reference(use.image)
    digest = use.digest or ref.digest
    return ref.with_digest(digest) if digest else ref


def display(ref: Reference) -> str:
    """`registry/repository@digest` when pinned (what runs), else `registry/repository:tag`."""
    if ref.digest:
        return f"{ref.registry}/{ref.repository}@{ref.digest}"
    return f"{ref.registry}/{ref.repository}:{ref.tag}"


def required_digests(images: Sequence[ImageUse]) -> list[str]:
    """The digests whose facts `decide` will look at (what the caller reads from the store)."""
    digests: list[str] = []
    for use in images:
        try:
            ref = _parse(use)
        except InputError:
            continue
        if ref.digest and ref.digest not in digests:
            digests.append(ref.digest)
    return digests


def _trust_reasons(name: str, facts: TrustFacts | None, signing_key: str | None) -> list[str]:
    reasons: list[str] = []
    record = facts.image if facts else None
    if record is None:
        reasons.append(f"image {name} was never scanned")
    elif record.gate == "fail":
        why = "; ".join(record.reasons)
        reasons.append(f"image {name} failed its gate" + (f": {why}" if why else ""))
    elif record.gate is None:
        reasons.append(f"image {name} has not finished scanning")
    signature = facts.signature if facts else None
    if signing_key is None:
        reasons.append(f"image {name} is not signed: no signing key is configured (LIFEGUARD_SIGNING_KEY)")
    elif signature is None:
        reasons.append(f"image {name} is not signed by {signing_key}")
    elif signature.flagged and not (record is not None and record.gate == "fail"):
        why = "; ".join(signature.flag_reasons)
        reasons.append(
            f"image {name} is signed by {signing_key} but failed its gate after signing"
            + (f": {why}" if why else "")
        )
    return reasons


def judge(use: ImageUse, facts: Mapping[str, TrustFacts], config: DecisionConfig) -> ImageVerdict:
    """The verdict on one image (see the module docstring for the rules and their order)."""
    try:
        ref = _parse(use)
    except InputError as exc:
        return ImageVerdict(
            container=use.container,
            image=use.image,
            digest=use.digest,
            allowed=False,
            reasons=[f"image {use.image!r} is not a valid image reference: {exc}"],
        )
    name = display(ref)
    if not config.registries.is_allowed(ref.registry):
        reason = f"registry {ref.registry} is not on the allow-list (image {name})"
        return ImageVerdict(
            container=use.container, image=name, digest=ref.digest, allowed=False, reasons=[reason]
        )
    if ref.digest is None:
        reason = (
            f"image {name} has no digest: pin it by digest (a tag can move; Lifeguard decides on digests)"
        )
        return ImageVerdict(
            container=use.container, image=name, allowed=False, unpinned=True, reasons=[reason]
        )
    reasons = _trust_reasons(name, facts.get(ref.digest), config.signing_key)
    return ImageVerdict(
        container=use.container, image=name, digest=ref.digest, allowed=not reasons, reasons=reasons
    )


def decide(images: Sequence[ImageUse], facts: Mapping[str, TrustFacts], config: DecisionConfig) -> Decision:
    """May these images run? `facts` maps digest -> TrustFacts (read with the configured key;
    an index's record must carry its derived gate, see `enforcement.facts`). No images: allowed."""
    verdicts = [judge(use, facts, config) for use in images]
    reasons = [r for v in verdicts for r in v.reasons]
    return Decision(allowed=all(v.allowed for v in verdicts), reasons=reasons, per_image=verdicts)


def short_reason(reasons: Sequence[str], limit: int = STOP_REASON_MAX) -> str:
    """One line of at most `limit` characters for ECS `stoppedReason`: the reasons joined, cut
    with `...` and a count of the reasons left out. The audit record keeps them all."""
    text = "Lifeguard: " + "; ".join(reasons)
    if len(text) <= limit:
        return text
    for kept in range(len(reasons) - 1, 0, -1):
        more = f" (+{len(reasons) - kept} more)"
        candidate = "Lifeguard: " + "; ".join(reasons[:kept]) + more
        if len(candidate) <= limit:
            return candidate
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return text[: limit - len(more) - 3] + "..." + more
