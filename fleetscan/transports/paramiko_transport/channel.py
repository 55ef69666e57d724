"""One exec channel on a paramiko connection: stdin in, both streams out under
their caps, the exit status, all within the command's timeout (blocking; runs
in a worker thread)."""

from __future__ import annotations

import select
import time
from dataclasses import dataclass, field

import paramiko

from fleetscan.errors import ChannelError, CommandTimeout
from fleetscan.transports.base import (
    DEFAULT_MAX_STDERR,
    READ_CHUNK,
    CommandResult,
    lost_while_running,
)
from fleetscan.transports.paramiko_transport.attempt import Aborted, Attempt, close_quietly

#: how often a blocked worker wakes to notice it was abandoned
POLL = 0.5


@dataclass
class _Capped:
    cap: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    cut: bool = False

    def add(self, data: bytes) -> None:
        if self.size + len(data) > self.cap:
            self.chunks.append(data[: self.cap - self.size])
            self.size = self.cap
            self.cut = True
        else:
            self.chunks.append(data)
            self.size += len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)


def run_blocking(
    transport: paramiko.Transport,
    command: str,
    stdin: str | None,
    timeout: float,
    max_output: int,
    attempt: Attempt,
) -> CommandResult:
    """One exec channel: send stdin, read both streams under their caps until
    EOF and the exit status, all before ``timeout``."""
    start = time.monotonic()
    deadline = start + timeout

    def left() -> float:
        return deadline - time.monotonic()

    chan: paramiko.Channel | None = None
    try:
        chan = transport.open_session(timeout=max(0.1, left()))
        attempt.keep(chan)
        chan.exec_command(command)
        chan.settimeout(max(0.1, left()))
        try:
            if stdin is not None:
                chan.sendall(stdin.encode())
            chan.shutdown_write()
        except OSError:
            # the command ended without reading its stdin (a host without sh,
            # a shell that refuses the script): read what it said. A lost
            # connection is still told apart below (no exit status).
            if not chan.closed:
                raise
        out, err = _Capped(max_output), _Capped(DEFAULT_MAX_STDERR)
        # readable when stdout or stderr has data, or on EOF. poll(), not select():
        # each channel's pipe costs two descriptors, and select() fails outright
        # once a descriptor number passes 1023 (a few hundred hosts at once)
        ready = select.poll()
        ready.register(chan.fileno(), select.POLLIN)
        while not (out.cut or err.cut):
            if attempt.aborted:
                raise Aborted()
            if left() <= 0:
                raise CommandTimeout(f"command did not finish within {timeout:.0f}s")
            ready.poll(max(0.0, min(left(), POLL)) * 1000)
            while chan.recv_ready() and not out.cut:
                out.add(chan.recv(READ_CHUNK))
            while chan.recv_stderr_ready() and not err.cut:
                err.add(chan.recv_stderr(READ_CHUNK))
            drained = not chan.recv_ready() and not chan.recv_stderr_ready()
            if drained and (chan.eof_received or chan.closed):
                break
        truncated = out.cut or err.cut
        exit_status: int | None = None
        if truncated:
            chan.close()  # stop the flood: nothing more will be read
        else:
            while not chan.status_event.wait(min(max(left(), 0), POLL)):
                if attempt.aborted:
                    raise Aborted()
                if left() <= 0:
                    raise CommandTimeout(f"command did not finish within {timeout:.0f}s")
            # paramiko leaves -1 when the channel closed without an exit status
            exit_status = chan.exit_status if chan.exit_status >= 0 else None
            if exit_status is None and not transport.is_active():
                raise ChannelError("connection lost while the command ran")
    except (CommandTimeout, Aborted):
        raise
    except TimeoutError:
        raise CommandTimeout(f"command did not finish within {timeout:.0f}s") from None
    except paramiko.ChannelException as exc:
        raise ChannelError(f"the host refused to open a session: {exc.text}") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        if attempt.aborted:
            raise Aborted() from None
        raise ChannelError(lost_while_running(exc)) from None
    finally:
        if chan is not None:
            close_quietly(chan)
    return CommandResult(
        command=command,
        exit_status=exit_status,
        stdout=out.value(),
        stderr=err.value(),
        duration=time.monotonic() - start,
        truncated=truncated,
    )
