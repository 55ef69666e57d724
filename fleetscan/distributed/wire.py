"""The wire documents' schema: strict pydantic models for shards and results.

Decoding (:mod:`fleetscan.distributed.codec`) validates every document that
comes through the broker against these models: unknown fields, wrong types,
out-of-range numbers and oversized text are refused. Private to the
distributed package.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from fleetscan.model import Status

#: largest document either side accepts (a result of a full shard of busy hosts
#: stays far below; a hostile one is refused before it is parsed)
MAX_DOCUMENT = 256 * 1024 * 1024
#: evidence text per command kept on the wire; reports show at most 64 KB of it
MAX_WIRE_TEXT = 256 * 1024
MAX_SHORT = 4096
MAX_LISTENERS = 1_000_000


def _string(limit: int) -> Any:
    """A text field checked in Python: pydantic's own ``str`` refuses the lone
    surrogates fleetscan keeps for bytes a host printed that are not UTF-8."""

    def check(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {type(value).__name__}")
        if len(value) > limit:
            raise ValueError(f"text of {len(value)} characters, more than {limit}")
        return value

    return PlainValidator(check)


# clip() appends a short "… [N more characters not shown]" note, hence the slack
Text = Annotated[str, _string(MAX_WIRE_TEXT + 128)]
Short = Annotated[str, _string(MAX_SHORT + 128)]
Seconds = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Process(Strict):
    name: Short
    pid: Annotated[int, Field(ge=0, le=2**63)] | None = None
    user: Short | None = None


class Listener(Strict):
    proto: Literal["tcp", "udp"]
    family: Literal[4, 6]
    address: Short
    port: Annotated[int, Field(ge=0, le=65535)]
    state: Short
    processes: Annotated[list[Process], Field(max_length=4096)]
    zone: Short | None = None
    raw: Text
    line: Annotated[int, Field(ge=0)] | None = None


class Unparsed(Strict):
    line: Annotated[int, Field(ge=0)]
    text: Text


class Evidence(Strict):
    command: Short
    exit_status: int | None
    stdout: Text
    stderr: Text
    duration: Seconds
    truncated: bool


class Scan(Strict):
    name: Short
    status: Annotated[Status, Field(strict=False)]  # its value, e.g. "ok"
    message: Text
    platform: Short | None
    collector: Short | None
    listeners: Annotated[list[Listener], Field(max_length=MAX_LISTENERS)]
    unparsed: Annotated[list[Unparsed], Field(max_length=MAX_LISTENERS)]
    evidence: Annotated[list[Evidence], Field(max_length=64)]
    started: Seconds
    finished: Seconds


class Result(Strict):
    kind: Literal["fleetscan.result"]
    protocol: int
    version: Short
    shard: Short
    site: Short
    worker: Short
    hostkey_checking: bool
    error: Short | None
    scans: Annotated[list[Scan], Field(max_length=100_000)]


class WireTarget(Strict):
    name: Short
    address: Short
    port: Annotated[int, Field(ge=1, le=65535)] | None
    user: Short | None
    platform: Short | None
    groups: Annotated[list[Short], Field(max_length=10_000)]
    transport: Short
    become: bool
    become_method: Short
    key_files: Annotated[list[Short], Field(max_length=64)]
    jump_host: Short | None
    known_hosts: Short | None
    password_env: Short | None
    passphrase_env: Short | None
    site: Short
    source: Short


class Settings(Strict):
    connect_timeout: Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)]
    host_timeout: Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)]
    max_output: Annotated[int, Field(ge=1024, le=1024**3)]
    transport: Short | None


class Shard(Strict):
    kind: Literal["fleetscan.shard"]
    protocol: int
    version: Short
    shard: Short
    site: Short
    settings: Settings
    targets: Annotated[list[WireTarget], Field(min_length=1, max_length=100_000)]
