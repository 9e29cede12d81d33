"""Collector kinds: each checks its configuration and turns one HTTP exchange into a result.

A collector never touches the database: `collect` takes a validated configuration and the request headers
(credentials included, read from the environment by the caller) and answers a `Result`. Retrying, recording and
scheduling live in `metrics.services`, so every kind gets the same at-least-once, exactly-one-result treatment.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.core.exceptions import ValidationError

from cairn.lib import http

EXCERPT_CHARS = 2000
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda value, expected: value >= expected,
    "<=": lambda value, expected: value <= expected,
    "==": lambda value, expected: value == expected,
    "in": lambda value, expected: value in expected,
}
METHODS = ("GET", "HEAD", "POST")
_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


class Status:
    SUCCESS = "success"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass
class Result:
    """What one attempt found. `transient` marks errors worth another attempt."""

    status: str
    passed: bool | None = None
    value: Decimal | None = None
    observed_at: datetime | None = None
    error: str = ""
    excerpt: str = ""
    transient: bool = False
    # A transient answer that is itself a verdict once retries run out (a health check that keeps getting 503).
    fails_when_exhausted: bool = False

    @classmethod
    def failure(cls, error: http.HttpError, excerpt: str = "") -> Result:
        status = Status.TIMEOUT if isinstance(error, http.RequestTimeout) else Status.ERROR
        return cls(status=status, error=str(error), excerpt=excerpt, transient=error.transient)


def _now() -> datetime:
    return datetime.now(UTC)


def _excerpt(response: http.Response) -> str:
    return response.text()[:EXCERPT_CHARS]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _require(config: Mapping[str, Any], name: str, kind: str) -> Any:
    value = config.get(name)
    if value in (None, ""):
        raise ValidationError({"config": f"{kind} needs `{name}`."})
    return value


def _url(config: Mapping[str, Any], name: str = "url") -> str:
    url = str(_require(config, name, "This kind"))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"config": f"`{name}` must be an http:// or https:// address, not {url!r}."})
    return url


def _comparison(config: Mapping[str, Any]) -> tuple[str, Any] | None:
    op = config.get("op")
    if op in (None, ""):
        return None
    if op not in COMPARISONS:
        raise ValidationError({"config": f"`op` must be one of {', '.join(COMPARISONS)}, not {op!r}."})
    if "expected" not in config:
        raise ValidationError({"config": f"`op` {op} needs `expected`."})
    expected = config["expected"]
    if op == "in" and not isinstance(expected, list):
        raise ValidationError({"config": "`expected` must be a list for `in`."})
    if op in (">=", "<=") and _number(expected) is None:
        raise ValidationError({"config": f"`expected` must be a number for {op}."})
    return op, expected


def compare(op: str, value: Any, expected: Any) -> bool:
    """Numbers compare as numbers (so 99.95 >= "99.9" holds); anything else as JSON values."""
    number = _number(value)
    if op == "in":
        numbers = [_number(option) for option in expected]
        return value in expected or (number is not None and number in [n for n in numbers if n is not None])
    expected_number = _number(expected)
    if number is not None and expected_number is not None:
        return COMPARISONS[op](number, expected_number)
    if op in (">=", "<="):
        return False
    return bool(value == expected)


def json_path_parse(path: str) -> list[str | int]:
    """`$.data.items[0].value` or `data.items.0.value` → ["data", "items", 0, "value"]."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _PATH_TOKEN.match(text, position)
        if match is None:
            raise ValidationError({"config": f"`path` {path!r} is not a JSON path (use a.b[0].c)."})
        name, index = match.groups()
        steps.append(int(index) if index is not None else (int(name) if name.isdigit() else name))
        position = match.end()
    return steps


def json_path_get(document: Any, steps: list[str | int]) -> Any:
    current = document
    for depth, step in enumerate(steps):
        where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps[: depth + 1])
        if isinstance(step, int) and isinstance(current, list):
            if step >= len(current):
                raise KeyError(f"{where}: the list has {len(current)} entries")
            current = current[step]
        elif isinstance(current, dict) and str(step) in current:
            current = current[str(step)]
        else:
            raise KeyError(f"{where}: not found")
    return current


class Collector:
    kind = ""
    #: Whether results of the kind are pass/fail, values, or both (what the source may feed).
    gives_pass_fail = True

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def collect(self, config: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float) -> Result:
        raise NotImplementedError


class HttpCheck(Collector):
    """Status code, latency and an optional body match: pass/fail, with the latency (ms) as the value."""

    kind = "http_check"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        method = str(config.get("method") or "GET").upper()
        if method not in METHODS:
            raise ValidationError({"config": f"`method` must be one of {', '.join(METHODS)}."})
        expected = config.get("expected_status") or [200]
        if not isinstance(expected, list) or not all(
            isinstance(code, int) and 100 <= code <= 599 for code in expected
        ):
            raise ValidationError({"config": "`expected_status` must be a list of HTTP status codes."})
        cleaned: dict[str, Any] = {"url": _url(config), "method": method, "expected_status": expected}
        if (latency := config.get("max_latency_ms")) not in (None, ""):
            if not isinstance(latency, int | float) or latency <= 0:
                raise ValidationError({"config": "`max_latency_ms` must be a positive number."})
            cleaned["max_latency_ms"] = latency
        if body := config.get("body_contains"):
            cleaned["body_contains"] = str(body)
        if pattern := config.get("body_regex"):
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ValidationError(
                    {"config": f"`body_regex` is not a regular expression: {exc}."}
                ) from None
            cleaned["body_regex"] = str(pattern)
        return cleaned

    def collect(self, config: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float) -> Result:
        started = time.monotonic()
        response = http.request(config["method"], config["url"], headers=headers, timeout=timeout)
        latency_ms = Decimal(round((time.monotonic() - started) * 1000, 1))
        observed = _now()
        if response.status not in config["expected_status"] and http.is_transient_status(response.status):
            return Result(
                status=Status.ERROR,
                passed=False,
                error=f"status {response.status} is not one of {config['expected_status']}",
                excerpt=_excerpt(response),
                transient=True,
                fails_when_exhausted=True,
                value=latency_ms,
                observed_at=observed,
            )
        problems = []
        if response.status not in config["expected_status"]:
            problems.append(f"status {response.status} is not one of {config['expected_status']}")
        if (limit := config.get("max_latency_ms")) is not None and latency_ms > Decimal(str(limit)):
            problems.append(f"latency {latency_ms} ms is over {limit} ms")
        body = response.text()
        if (needle := config.get("body_contains")) and needle not in body:
            problems.append(f"the body does not contain {needle!r}")
        if (pattern := config.get("body_regex")) and re.search(pattern, body) is None:
            problems.append(f"the body does not match /{pattern}/")
        return Result(
            status=Status.FAILED if problems else Status.SUCCESS,
            passed=not problems,
            value=latency_ms,
            observed_at=observed,
            error="; ".join(problems),
            excerpt=body[:EXCERPT_CHARS],
        )


def _http_failure(response: http.Response) -> Result:
    return Result(
        status=Status.ERROR,
        error=f"HTTP {response.status}",
        excerpt=_excerpt(response),
        transient=http.is_transient_status(response.status),
    )


def _judge(config: Mapping[str, Any], value: Any, observed: datetime, excerpt: str) -> Result:
    """A value found: compare it when the source asks for pass/fail, and keep it when it is a number."""
    number = _number(value)
    if (comparison := _comparison(config)) is not None:
        op, expected = comparison
        passed = compare(op, value, expected)
        return Result(
            status=Status.SUCCESS if passed else Status.FAILED,
            passed=passed,
            value=number,
            observed_at=observed,
            error="" if passed else f"{value!r} {op} {expected!r} does not hold",
            excerpt=excerpt,
        )
    if number is None:
        return Result(
            status=Status.ERROR,
            error=f"the value {value!r} is not a number",
            excerpt=excerpt,
            transient=False,
        )
    return Result(status=Status.SUCCESS, value=number, observed_at=observed, excerpt=excerpt)


class HttpJson(Collector):
    """A field of a JSON document by path: compared with an expectation, or recorded as a number."""

    kind = "http_json"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cleaned: dict[str, Any] = {"url": _url(config), "path": str(_require(config, "path", "http_json"))}
        json_path_parse(cleaned["path"])
        if (comparison := _comparison(config)) is not None:
            cleaned["op"], cleaned["expected"] = comparison
        return cleaned

    def collect(self, config: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float) -> Result:
        response = http.request(
            "GET", config["url"], headers={"Accept": "application/json", **headers}, timeout=timeout
        )
        if response.status >= 300:
            return _http_failure(response)
        document = response.json()
        try:
            value = json_path_get(document, json_path_parse(config["path"]))
        except KeyError as exc:
            return Result(status=Status.ERROR, error=f"path {exc.args[0]}", excerpt=_excerpt(response))
        return _judge(config, value, _now(), _excerpt(response))


class Prometheus(Collector):
    """An instant PromQL query through /api/v1/query: a scalar or exactly one series."""

    kind = "prometheus"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        cleaned: dict[str, Any] = {
            "base_url": _url(config, "base_url").rstrip("/"),
            "query": str(_require(config, "query", "prometheus")),
        }
        if (comparison := _comparison(config)) is not None:
            cleaned["op"], cleaned["expected"] = comparison
        return cleaned

    def collect(self, config: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float) -> Result:
        url = f"{config['base_url']}/api/v1/query?{urlencode({'query': config['query']})}"
        response = http.request(
            "GET", url, headers={"Accept": "application/json", **headers}, timeout=timeout
        )
        excerpt = _excerpt(response)
        if response.status >= 300 and not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return _http_failure(response)
        body = response.json()
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", "no error text") if isinstance(body, dict) else "not an object"
            error_type = body.get("errorType", "error") if isinstance(body, dict) else "error"
            return Result(
                status=Status.ERROR,
                error=f"Prometheus answered {error_type}: {error}",
                excerpt=excerpt,
                transient=http.is_transient_status(response.status),
            )
        data = body.get("data") or {}
        result_type, result = data.get("resultType"), data.get("result")
        if result_type == "scalar" and isinstance(result, list) and len(result) == 2:
            sample = result
        elif result_type == "vector" and isinstance(result, list):
            if len(result) != 1:
                what = "no series" if not result else f"{len(result)} series"
                return Result(
                    status=Status.ERROR,
                    error=f"the query returned {what}; it must return one (aggregate with sum() or avg())",
                    excerpt=excerpt,
                )
            sample = result[0].get("value") or []
        else:
            return Result(
                status=Status.ERROR,
                error=f"result type {result_type!r} is not supported; use a scalar or instant vector query",
                excerpt=excerpt,
            )
        try:
            timestamp, raw = float(sample[0]), sample[1]
        except (IndexError, TypeError, ValueError):
            return Result(status=Status.ERROR, error="the sample is not [time, value]", excerpt=excerpt)
        if _number(raw) is None or (isinstance(raw, str) and raw.lower() in ("nan", "+inf", "-inf")):
            return Result(
                status=Status.ERROR, error=f"the value {raw!r} is not a finite number", excerpt=excerpt
            )
        observed = datetime.fromtimestamp(timestamp, UTC) if math.isfinite(timestamp) else _now()
        return _judge(config, raw, observed, excerpt)


class Push(Collector):
    """External systems post their results; there is nothing to fetch."""

    kind = "push"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        if config:
            raise ValidationError({"config": "A push source has no settings; leave `config` empty."})
        return {}

    def collect(self, config: Mapping[str, Any], *, headers: Mapping[str, str], timeout: float) -> Result:
        return Result(status=Status.ERROR, error="a push source is not collected; systems post to it")


COLLECTORS: dict[str, Collector] = {
    collector.kind: collector for collector in (HttpCheck(), HttpJson(), Prometheus(), Push())
}


def collector_for(kind: str) -> Collector:
    try:
        return COLLECTORS[kind]
    except KeyError:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."}) from None
