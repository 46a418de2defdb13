"""A small declarative schema for structured Pulumi config.

Settings are frozen dataclasses whose fields carry an :class:`Opt` in their metadata: the
documentation, the parser that validates one value and whether the value is a secret.
:func:`parse_section` walks such a class over a plain mapping (a structured Pulumi config
value, or the same object read from a stack file) and collects *every* problem before failing,
so a user fixes a stack file in one pass::

    @dataclass(frozen=True)
    class Example:
        retention: str = opt("15d", "How long samples are kept.", duration)

    parse_section(Example, {"retention": "15 days"}, "prometheus", errors)
    # errors -> ["perfstack:prometheus.retention must be a duration such as 15d, got '15 days'"]

The same metadata renders the config reference in Pulumi.yaml and README.md
(:mod:`perfstack.docs`), so the documentation cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

PROJECT = "perfstack"

# A stack file stores a secret as {"secure": "v1:..."}; render mode cannot decrypt it.
SECURE = "secure"


class Invalid(Exception):
    """Raised by a parser: the value does not have the expected form."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


class SettingsError(ValueError):
    """One or more config values are invalid. ``str()`` lists one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Secret:
    """A secret config value. ``repr``/``str`` never show it; :meth:`reveal` does.

    In render mode (stack file read without the passphrase) ``value`` is None and
    :meth:`reveal` returns a placeholder of the same form, so rendered files still pass
    promtool, amtool and redis-server.
    """

    key: str
    value: str | None = field(default=None, repr=False, compare=False)
    kind: str = "text"  # "text" or "url": decides the placeholder's form

    def reveal(self) -> str:
        return self.value if self.value is not None else placeholder(self.key, self.kind)

    def __str__(self) -> str:  # pragma: no cover - defensive
        return f"<secret {PROJECT}:{self.key}>"


def placeholder(key: str, kind: str = "text") -> str:
    """A stand-in for a secret in rendered files: valid in form, obviously not real."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")
    if kind == "url":
        return f"https://secret.invalid/{slug}"
    if kind == "redis-url":
        return f"redis://{slug}.secret.invalid:6379"
    if kind == "postgres-url":
        return f"postgresql://{slug}.secret.invalid:5432/postgres?sslmode=disable"
    return f"SECRET-{slug}"


@dataclass(frozen=True)
class Opt:
    doc: str
    parse: Callable[[Any], Any] | None  # None: a nested section or list of sections
    secret: bool = False
    secret_kind: str = "text"
    section: type | None = None  # nested dataclass
    many: bool = False  # a list of ``section``
    example: str | None = None
    required: bool = False


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def opt(default: Any, doc: str, parse: Callable[[Any], Any], *, example: str | None = None) -> Any:
    """A scalar setting with a default (or ``REQUIRED``)."""
    required = default is REQUIRED
    meta = {"opt": Opt(doc=doc, parse=parse, example=example, required=required)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for list defaults")
    return field(default=None if required else default, metadata=meta)


def secret(doc: str, kind: str = "text", *, example: str | None = None) -> Any:
    """An optional secret setting (set with ``pulumi config set --secret --path``).

    ``kind`` is "text", "url" (http/https), "redis-url" or "postgres-url": it decides how the
    value is validated and the form of its placeholder.
    """
    meta = {"opt": Opt(doc=doc, parse=nonempty_str, secret=True, secret_kind=kind, example=example)}
    return field(default=None, metadata=meta)


def section(cls: type, doc: str) -> Any:
    return field(default_factory=cls, metadata={"opt": Opt(doc=doc, parse=None, section=cls)})


def many(cls: type, doc: str, *, example: str | None = None) -> Any:
    return field(default=(), metadata={"opt": Opt(doc=doc, parse=None, section=cls, many=True, example=example)})


def fields_of(cls: type) -> list[tuple[dataclasses.Field[Any], Opt]]:
    return [(f, f.metadata["opt"]) for f in dataclasses.fields(cls) if "opt" in f.metadata]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)


class Problems:
    """Collects problems so one run reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{PROJECT}:{key} {message}")

    def invalid(self, key: str, expected: str, got: Any, *, hide: bool = False) -> None:
        self.add(key, f"must be {expected}, got {'<hidden secret>' if hide else show(got)}")

    def raise_if_any(self) -> None:
        if self.items:
            raise SettingsError(self.items)


def parse_section(
    cls: type,
    raw: Any,
    key: str,
    problems: Problems,
    *,
    secret_ok: bool,
) -> Any:
    """Parse ``raw`` (a mapping or None) into ``cls``; record problems under ``key``.

    ``secret_ok`` says whether secret fields may hold a value here: true when the top-level
    Pulumi key is a secret (or, in a stack file, when the field is ``{secure: ...}``).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.invalid(key, "an object with keys " + ", ".join(camel(f.name) for f, _ in fields_of(cls)), raw)
        return cls()
    known = {camel(f.name): (f, o) for f, o in fields_of(cls)}
    for name in raw:
        if name not in known:
            problems.add(
                f"{key}.{name}",
                "is not a known setting; expected one of: " + ", ".join(sorted(known)),
            )
    values: dict[str, Any] = {}
    for name, (f, o) in known.items():
        sub = f"{key}.{name}"
        if name not in raw or (raw[name] is None and (o.required or o.secret or o.section is not None)):
            if o.required:
                problems.add(sub, "is required" + (f", such as {o.example}" if o.example else ""))
            continue
        value = raw[name]
        if value is None:  # an explicit null: "unset" where the setting allows it
            if f.default is None or o.parse is port:
                values[f.name] = None
            else:
                assert o.parse is not None
                try:
                    o.parse(value)
                except Invalid as exc:
                    problems.invalid(sub, exc.expected, value)
            continue
        if o.secret:
            values[f.name] = _parse_secret(value, sub, o, problems, secret_ok=secret_ok)
        elif o.many:
            assert o.section is not None
            if not isinstance(value, list):
                problems.invalid(sub, "a list of objects", value)
                continue
            values[f.name] = tuple(
                parse_section(o.section, item, f"{sub}[{i}]", problems, secret_ok=secret_ok)
                for i, item in enumerate(value)
            )
        elif o.section is not None:
            values[f.name] = parse_section(o.section, value, sub, problems, secret_ok=secret_ok)
        else:
            assert o.parse is not None
            try:
                values[f.name] = o.parse(value)
            except Invalid as exc:
                problems.invalid(sub, exc.expected, value)
    return cls(**values)


def _parse_secret(value: Any, key: str, o: Opt, problems: Problems, *, secret_ok: bool) -> Secret | None:
    if isinstance(value, Mapping) and set(value) == {SECURE}:
        return Secret(key, None, o.secret_kind)  # encrypted in a stack file: placeholder
    if not secret_ok:
        problems.add(
            key,
            f"is a secret and must be stored encrypted: pulumi config set --secret --path '{key}' <value>",
        )
        return None
    if not isinstance(value, str) or not value:
        problems.invalid(key, "a non-empty string", value, hide=True)
        return None
    check = _SECRET_CHECKS.get(o.secret_kind)
    if check is not None:
        try:
            check(value)
        except Invalid as exc:
            problems.invalid(key, exc.expected, value, hide=True)
            return None
    return Secret(key, value, o.secret_kind)


# ---------------------------------------------------------------------------------------
# Parsers: each takes the raw value and returns the typed value or raises Invalid.

_DURATION = re.compile(r"^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")


def duration(value: Any) -> str:
    """A Prometheus duration: ``15d``, ``1h30m``, ``30s``."""
    if isinstance(value, str) and _DURATION.match(value) and any(int(n) > 0 for n in re.findall(r"\d+", value)):
        return value
    raise Invalid("a duration such as 15d, 6h or 30s")


_PROM_SIZE = re.compile(r"^\d+(?:B|KB|MB|GB|TB|PB|EB)$")


def prom_size(value: Any) -> str:
    """A Prometheus byte size for --storage.tsdb.retention.size: ``512MB``, ``10GB``."""
    if isinstance(value, str) and _PROM_SIZE.match(value) and int(re.sub(r"\D", "", value)) > 0:
        return value
    raise Invalid("a size such as 10GB or 512MB (units B, KB, MB, GB, TB, PB, EB)")


_REDIS_SIZE = re.compile(r"^(\d+)(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)
_REDIS_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def redis_size(value: Any) -> str:
    """A redis.conf memory size: ``256mb``, ``1gb``."""
    if isinstance(value, str):
        m = _REDIS_SIZE.match(value)
        if m and int(m.group(1)) > 0:
            return value.lower()
    raise Invalid("a memory size such as 256mb or 1gb")


def redis_size_bytes(value: str) -> int:
    m = _REDIS_SIZE.match(value)
    assert m, value
    return int(m.group(1)) * _REDIS_UNITS[(m.group(2) or "").lower()]


def port(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise Invalid("a port number from 1 to 65535 (or null to leave it unpublished)")


def positive_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise Invalid("a positive whole number")


def cpus(value: Any) -> str:
    """Docker's --cpus: a positive decimal given as a number or a string, such as 0.5."""
    if isinstance(value, bool):
        raise Invalid("a positive number of CPUs such as 0.5 or 2")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Invalid("a positive number of CPUs such as 0.5 or 2") from None
    if not 0 < number <= 1024:
        raise Invalid("a positive number of CPUs such as 0.5 or 2")
    return f"{number:g}"


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "false", "False"):
        return value in ("true", "True")
    raise Invalid("true or false")


def ip_address(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (TypeError, ValueError):
        raise Invalid("an IP address such as 127.0.0.1 or 0.0.0.0") from None


def nonempty_str(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise Invalid("a non-empty string")


_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def dns_name(value: Any) -> str:
    if isinstance(value, str) and _NAME.match(value):
        return value
    raise Invalid("a lower-case name of letters, digits and '-', such as payments-api")


# repo[:tag][@sha256:digest]; repo may carry a registry host with a port.
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


def image_ref(value: Any) -> str:
    """An image pinned by tag, optionally also by digest; never ``latest``."""
    expected = "an image pinned by tag, such as prom/prometheus:v3.5.0 (optionally @sha256:<digest>), not 'latest'"
    if not isinstance(value, str):
        raise Invalid(expected)
    m = _IMAGE.match(value)
    if not m or not m.group("tag") or m.group("tag") == "latest":
        raise Invalid(expected)
    return value


_HOST_PORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>\d{1,5})$")


def host_port(value: Any) -> str:
    if isinstance(value, str):
        m = _HOST_PORT.match(value)
        if m and 1 <= int(m.group("port")) <= 65535:
            return value
    raise Invalid("host:port, such as host.docker.internal:8000")


def http_url(value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc and " " not in value:
            return value
    raise Invalid("an http(s) URL such as https://mimir.example.com/api/v1/push")


def url_path(value: Any) -> str:
    if isinstance(value, str) and value.startswith("/") and " " not in value:
        return value
    raise Invalid("a URL path starting with '/', such as /metrics")


def one_of(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value in choices:
            return value
        raise Invalid("one of " + ", ".join(choices))

    return parse


_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def labels(value: Any) -> tuple[tuple[str, str], ...]:
    """Prometheus labels as an object of name -> string value."""
    expected = "an object of label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __) to string values"
    if not isinstance(value, Mapping):
        raise Invalid(expected)
    for k, v in value.items():
        if not isinstance(k, str) or not _LABEL.match(k) or k.startswith("__") or not isinstance(v, str):
            raise Invalid(expected)
    return tuple(sorted(value.items()))


def label_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(v, str) and (v == "..." or _LABEL.match(v)) for v in value):
        return tuple(value)
    raise Invalid("a non-empty list of label names, such as [alertname, job]")


def list_of(parse: Callable[[Any], Any], expected: str) -> Callable[[Any], tuple[Any, ...]]:
    def parse_list(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Invalid(expected)
        try:
            return tuple(parse(v) for v in value)
        except Invalid:
            raise Invalid(expected) from None

    return parse_list


def redis_url(value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("redis", "rediss") and parts.hostname:
            return value
    raise Invalid("a Redis URL such as rediss://:password@cache.example.com:6380/0")


def postgres_url(value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("postgres", "postgresql") and parts.hostname:
            return value
    raise Invalid("a PostgreSQL URL such as postgresql://monitor:pw@db:5432/app?sslmode=require")


_SECRET_CHECKS: dict[str, Callable[[Any], str]] = {
    "url": http_url,
    "redis-url": redis_url,
    "postgres-url": postgres_url,
}

_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus duration (already validated by :func:`duration`)."""
    return sum(int(n) * _SECONDS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", value))
