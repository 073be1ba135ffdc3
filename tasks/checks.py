"""Success checks of a task file: ``{js: ...}``, ``{url: ...}``, ``{text: ...}``.

Checks run against the live Playwright page. The ``js`` expression comes from the *user's own* task
file (never from a model or a page), so evaluating it in the page is the point, not a risk.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from actions.errors import EnvironmentFailure


class _Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JsCheck(_Check):
    """A JavaScript expression evaluated in the page; holds when the result is truthy."""

    js: str = Field(min_length=1)


class UrlCheck(_Check):
    """A regular expression searched (not matched) in the page URL."""

    url: str = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return pattern


class TextCheck(_Check):
    """Text that the page's visible text (document.body.innerText) must contain."""

    text: str = Field(min_length=1)


# Not a discriminated union: each check is a one-key mapping, and extra="forbid" makes exactly
# one member accept it, so the key itself discriminates.
Check = Union[JsCheck, UrlCheck, TextCheck]


@dataclass
class CheckResult:
    check: str  # e.g. "url: /dashboard"
    ok: bool
    detail: str = ""


def _is_closed_error(e: Exception) -> bool:
    # Playwright raises one Error type for both "your JS threw" and "the page is gone";
    # only the second is an environment failure.
    msg = str(e).lower()
    return any(s in msg for s in ("target closed", "has been closed", "browser has been closed",
                                  "target page, context or browser has been closed", "connection closed"))


def _evaluate(page: Any, expression: str) -> Any:
    from playwright.sync_api import Error as PlaywrightError

    try:
        return page.evaluate(expression)
    except PlaywrightError as e:
        if _is_closed_error(e):
            raise EnvironmentFailure(f"the page is gone while checking success: {e}") from e
        raise


def run_check(check: Check, page: Any) -> CheckResult:
    """Evaluate one check; a JS error in a ``js`` check makes it fail with the error as detail."""
    from playwright.sync_api import Error as PlaywrightError

    if isinstance(check, UrlCheck):
        url = page.url
        ok = re.search(check.url, url) is not None
        return CheckResult(f"url: {check.url}", ok, "" if ok else f"page URL is {url}")
    if isinstance(check, TextCheck):
        text = _evaluate(page, "() => document.body ? document.body.innerText : ''") or ""
        ok = check.text in text
        return CheckResult(f"text: {check.text}", ok, "" if ok else "text not visible on the page")
    try:
        # Wrapped in an arrow so a bare expression and a statement-free snippet behave alike.
        value = _evaluate(page, f"() => Boolean({check.js}\n)")
    except EnvironmentFailure:
        raise
    except PlaywrightError as e:
        return CheckResult(f"js: {check.js}", False, f"JavaScript error: {str(e).splitlines()[0]}")
    return CheckResult(f"js: {check.js}", bool(value), "" if value else "expression is falsy")


def run_checks(checks: list[Check], page: Any) -> list[CheckResult]:
    return [run_check(c, page) for c in checks]
