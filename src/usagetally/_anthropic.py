"""Interop with the official ``anthropic`` SDK (the ``usagetally[anthropic]`` extra).

Conversions between our :class:`~usagetally.BetaUsage` and the SDK's
``anthropic.types.beta.BetaUsage``, exact in both directions, unknown fields and unknown
iteration types included. (The fake SDK clients and the SDK's own reading of a transcript
are test helpers: they live in ``usagetally.testing``.)

usagetally does not depend on the SDK: ``anthropic`` is imported inside the functions, so this
module imports without it and each function raises :class:`ImportError` with an install hint
when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._converter import converter as _default_converter
from ._errors import LocalTypeError, check_argument_type
from ._install import install_hint
from ._models import BetaUsage

if TYPE_CHECKING:
    import cattrs
    from anthropic.types import Usage as SdkUsage
    from anthropic.types.beta import BetaUsage as SdkBetaUsage

__all__ = ["from_sdk_usage", "to_sdk_usage"]

_INSTALL_HINT = f"this needs the anthropic SDK; {install_hint('anthropic')}"


def _require_sdk() -> None:
    try:
        import anthropic  # noqa: F401
        import httpx2  # noqa: F401
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc


def to_sdk_usage(usage: BetaUsage, *, converter: cattrs.Converter | None = None) -> SdkBetaUsage:
    """Convert our usage into the SDK's ``anthropic.types.beta.BetaUsage``.

    The wire form of ``usage`` is validated by the SDK's pydantic model. When it holds what
    the SDK's types do not accept (an iteration ``type`` or a ``service_tier`` added after
    the SDK was released), the object is built the way the SDK builds API responses, without
    validation, so nothing is lost: unknown iteration types become instances of a known
    iteration class whose ``type`` is the one sent, and unknown fields are kept as pydantic
    extras. Either way ``to_dict(warnings=False)`` gives back the wire form exactly.

    Args:
        usage: The usage to convert.
        converter: The converter that gives the wire form (default: the lenient
            :data:`usagetally.converter`).

    Returns:
        An ``anthropic.types.beta.BetaUsage`` with the same wire form as ``usage``.

    Raises:
        ImportError: The anthropic SDK is not installed.

    >>> from usagetally import BetaUsage
    >>> sdk = to_sdk_usage(BetaUsage(input_tokens=12, output_tokens=3))
    >>> type(sdk).__module__, sdk.output_tokens
    ('anthropic.types.beta.beta_usage', 3)

    """
    check_argument_type(usage, BetaUsage, "to_sdk_usage(usage)")
    _require_sdk()
    import pydantic
    from anthropic.types.beta import BetaUsage as SdkBetaUsage

    conv = _default_converter if converter is None else converter
    wire: dict[str, Any] = conv.unstructure(usage)
    try:
        return SdkBetaUsage.model_validate(wire)
    except pydantic.ValidationError:
        # The SDK's own lenient construction, as applied to every API response.
        return SdkBetaUsage.model_construct(**wire)


def from_sdk_usage(
    obj: SdkBetaUsage | SdkUsage, *, converter: cattrs.Converter | None = None
) -> BetaUsage:
    """Convert the SDK's usage object into our :class:`~usagetally.BetaUsage`.

    Reads ``obj.to_dict(mode="json", warnings=False)``: the fields the API sent (or that
    were set), with the fields the SDK does not know kept and absent ones left out. Warnings
    are off because pydantic warns when it serializes an unknown iteration type that the SDK
    stored in a known class.

    Args:
        obj: An ``anthropic.types.beta.BetaUsage`` (such as ``message.usage`` of a message
            from ``client.beta.messages``) or an ``anthropic.types.Usage``.
        converter: The converter to structure with (default: the lenient
            :data:`usagetally.converter`; pass ``make_converter(strict=True)`` to refuse
            what this version of usagetally does not know).

    Returns:
        The usage, as our frozen attrs model.

    Raises:
        UsageValidationError: The SDK object holds a value that is not valid usage (such
            as a negative count), or, with a strict converter, an unknown field or type.
        ImportError: The anthropic SDK is not installed.

    >>> from anthropic.types.beta import BetaUsage as SdkBetaUsage
    >>> from_sdk_usage(SdkBetaUsage(input_tokens=12, output_tokens=3)).input_tokens
    12

    """
    _require_sdk()
    conv = _default_converter if converter is None else converter
    if not callable(getattr(obj, "to_dict", None)):
        raise LocalTypeError(
            f"from_sdk_usage(obj) must be an anthropic SDK usage, got {type(obj).__name__}"
        )
    wire = obj.to_dict(mode="json", warnings=False)
    result: BetaUsage = conv.structure(wire, BetaUsage)
    return result
