"""The remote probe programs run on probe hosts, and how their output is read.

The programs are constants. What varies — the endpoints, the timeout, the
parallelism, the output marker — is data, validated here (IP literal or plain
DNS name, integer port) and never interpolated into a command line:

* **POSIX** (``sh -s``, program on stdin like the collectors): the request is
  the body of a quoted here-document (``<<'…'``: no expansion, no command
  substitution; no request line can equal the delimiter, which has no
  spaces). The program uses what the host has, in order: ``bash`` with
  ``/dev/tcp`` under ``timeout``; ``nc -z``; ``python3``. With none of them
  it prints ``none`` and the reason; the zone then tries its next probe host.
* **Windows** (PowerShell): the exec command is a constant
  ``powershell -EncodedCommand …`` and the request is its stdin, read with
  ``[Console]::In``; connects with ``System.Net.Sockets.TcpClient``.

Request: a header line ``<marker> <timeout seconds> <parallel>``, then one
line per endpoint ``<index> <address> <port>``. Answer: one line per endpoint
``<marker> r <index> <result> <rtt ms or -> <reason>`` where result is
``open``, ``refused``, ``filtered``, ``unreachable`` or ``error``; plus
``<marker> method <name>`` or ``<marker> none <reason>``. The marker holds a
per-run nonce, so a line forged by anything else on the host is ignored.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from fleetscan.exposure.plan import Endpoint, usable_address
from fleetscan.exposure.scanner import Outcome
from fleetscan.model import ProbeOutcome

POSIX_COMMAND = "sh -s"
END = "FLEETSCAN_PROBE_REQUEST_END"
RESULTS = ("open", "refused", "filtered", "unreachable")

# bash: one background job per endpoint, at most $j at once (wait -n).
# Runs in bash itself; the connect runs in a child bash under timeout so a
# SYN that gets no answer is cut at $t seconds.
_BASH_LOOP = r"""
read -r m t j
n=0
probe() {
  local s e err rc res rtt
  s=${EPOCHREALTIME/./}
  err=$(timeout "$t" bash -c "exec 3<>/dev/tcp/\$0/\$1" "$2" "$3" 2>&1); rc=$?
  e=${EPOCHREALTIME/./}
  rtt=-; [ -n "$s" ] && [ -n "$e" ] && rtt=$(( (e - s) / 1000 ))
  err=${err//$'\n'/ }; err=${err##*: }
  if [ $rc -eq 0 ]; then res=open; err="handshake completed"
  elif [ $rc -eq 124 ]; then res=filtered; rtt=-; err="no answer within ${t}s"
  else case $err in
    *refused*) res=refused;;
    *"No route"*|*nreachable*|*"Host is down"*) res=unreachable;;
    *) res=error;;
  esac; fi
  printf '%s r %s %s %s %s\n' "$m" "$1" "$res" "$rtt" "$err"
}
while read -r i a p; do
  probe "$i" "$a" "$p" &
  n=$((n + 1))
  if [ "$n" -ge "$j" ]; then wait -n; n=$((n - 1)); fi
done
wait
"""

# nc: OpenBSD, BSD, busybox and ncat all know -z (no data) and -w (seconds)
_NC_LOOP = r"""
read -r m t j
w=${t%%.*}; [ "$w" -ge 1 ] 2>/dev/null || w=1
n=0
while read -r i a p; do
  (
    err=$(nc -z -v -w "$w" "$a" "$p" 2>&1 </dev/null); rc=$?
    err=$(printf '%s' "$err" | tr '\n' ' '); err=${err##*: }
    if [ $rc -eq 0 ]; then res=open; err="handshake completed"
    else case $err in
      *refused*) res=refused;;
      *"timed out"*|*"Operation now in progress"*) res=filtered; err="no answer within ${w}s";;
      *"No route"*|*nreachable*|*"Host is down"*) res=unreachable;;
      *) res=error;;
    esac; fi
    printf '%s r %s %s - %s\n' "$m" "$i" "$res" "$err"
  ) &
  n=$((n + 1))
  if [ "$n" -ge "$j" ]; then wait; n=0; fi
done
wait
"""

# python3: threads, errno-exact classification
_PYTHON = r"""
import errno, socket, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
m, t, j = sys.stdin.readline().split()
t, j = float(t), int(j)
lines = [x.split() for x in sys.stdin.read().splitlines() if len(x.split()) == 3]
out = threading.Lock()
UNREACH = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EACCES}
def probe(i, a, p):
    s = time.monotonic()
    try:
        socket.create_connection((a, int(p)), timeout=t).close()
        res, why = "open", "handshake completed"
    except socket.timeout:
        res, why = "filtered", "no answer within %gs" % t
    except ConnectionRefusedError:
        res, why = "refused", "connection refused"
    except OSError as e:
        res = "unreachable" if e.errno in UNREACH else "error"
        why = e.strerror or str(e)
    rtt = "-" if res == "filtered" else "%.3f" % ((time.monotonic() - s) * 1000)
    with out:
        print(m, "r", i, res, rtt, " ".join(why.split()), flush=True)
with ThreadPoolExecutor(max_workers=j) as pool:
    for x in lines:
        pool.submit(probe, *x)
"""


def _heredoc(var: str, delimiter: str, text: str) -> str:
    """``var=$(cat <<'DELIM' … DELIM)``: ``text`` kept verbatim (quoted delimiter)."""
    assert delimiter not in text.splitlines()
    return f"{var}=$(cat <<'{delimiter}'\n{text.strip(chr(10))}\n{delimiter}\n)\n"


# each program is handed to its interpreter as one argument from a variable,
# so none of them needs quoting inside the script
_POSIX_HEAD = (
    "LC_ALL=C; export LC_ALL; LANG=C; export LANG\n"
    'have() { command -v "$1" >/dev/null 2>&1; }\n'
    + _heredoc("bash_loop", "FLEETSCAN_BASH_END", _BASH_LOOP)
    + _heredoc("nc_loop", "FLEETSCAN_NC_END", _NC_LOOP)
    + _heredoc("py_prog", "FLEETSCAN_PY_END", _PYTHON)
    + "req=$(cat <<'"
    + END
    + "'\n"
)

_POSIX_TAIL = (
    END + "\n)\n"
    "m=${req%% *}\n"
    "if have bash && have timeout &&"
    " bash -c '[ \"${BASH_VERSINFO[0]}\" -ge 5 ]' 2>/dev/null; then\n"
    '  echo "$m method bash"\n'
    '  printf \'%s\\n\' "$req" | bash -c "$bash_loop"\n'
    "elif have nc; then\n"
    '  echo "$m method nc"\n'
    '  printf \'%s\\n\' "$req" | (eval "$nc_loop")\n'
    "elif have python3; then\n"
    '  echo "$m method python3"\n'
    '  printf \'%s\\n\' "$req" | python3 -c "$py_prog"\n'
    "else\n"
    '  echo "$m none no bash 5 with timeout, no nc and no python3 on this host"\n'
    "fi\n"
)

_POWERSHELL = r"""
$ErrorActionPreference = "Stop"
$lines = [Console]::In.ReadToEnd() -split "`r?`n" | Where-Object { $_.Trim() -ne "" }
$head = $lines[0] -split " "
$m = $head[0]; $t = [int]([double]$head[1] * 1000); $j = [int]$head[2]
"$m method powershell"
$todo = @($lines | Select-Object -Skip 1)
for ($k = 0; $k -lt $todo.Count; $k += $j) {
  $batch = @()
  foreach ($line in $todo[$k..([Math]::Min($k + $j, $todo.Count) - 1)]) {
    $f = $line -split " "
    $c = New-Object System.Net.Sockets.TcpClient
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $batch += ,@($f[0], $c, $c.ConnectAsync($f[1], [int]$f[2]), $sw)
  }
  foreach ($b in $batch) {
    $res = "error"; $why = ""; $rtt = "-"
    try {
      if ($b[2].Wait($t)) {
        $res = "open"; $why = "handshake completed"
        $ms = $b[3].Elapsed.TotalMilliseconds
        $rtt = $ms.ToString("F3", [Globalization.CultureInfo]::InvariantCulture)
      }
      else { $res = "filtered"; $why = "no answer within $($t / 1000)s" }
    } catch {
      $e = $_.Exception.GetBaseException()
      $why = $e.Message -replace "\s+", " "
      if ($e -is [System.Net.Sockets.SocketException]) {
        switch ($e.SocketErrorCode.ToString()) {
          "ConnectionRefused" { $res = "refused" }
          "TimedOut" { $res = "filtered" }
          { $_ -in "HostUnreachable", "NetworkUnreachable", "HostDown", "NetworkDown" } {
            $res = "unreachable"
          }
        }
      }
    }
    $b[1].Close()
    "$m r $($b[0]) $res $rtt $why"
  }
}
"""

POWERSHELL_COMMAND = "powershell -NoProfile -NonInteractive -EncodedCommand " + base64.b64encode(
    _POWERSHELL.encode("utf-16-le")
).decode("ascii")


@dataclass(frozen=True, slots=True)
class Request:
    """One probe host's work: the endpoints, numbered, and the per-run marker."""

    marker: str
    endpoints: tuple[Endpoint, ...]
    timeout: float
    parallel: int

    def body(self) -> str:
        """Header + one line per endpoint (the data the programs read)."""
        lines = [f"{self.marker} {self.timeout:g} {self.parallel}"]
        for i, ep in enumerate(self.endpoints):
            # planning filtered addresses already; this is the backstop
            if not usable_address(ep.address) or not 0 < ep.port < 65536:
                raise ValueError(f"unsafe probe endpoint {ep!r}")
            lines.append(f"{i} {ep.address} {ep.port}")
        return "\n".join(lines) + "\n"


def new_request(endpoints: Sequence[Endpoint], timeout: float, parallel: int) -> Request:
    return Request(
        marker=f"@@FLEETSCAN-PROBE-{secrets.token_hex(8)}",
        endpoints=tuple(endpoints),
        timeout=max(0.1, math.ceil(timeout * 10) / 10),
        parallel=max(1, parallel),
    )


def posix_program(request: Request) -> str:
    """The stdin of ``sh -s`` on a POSIX probe host."""
    return _POSIX_HEAD + request.body() + _POSIX_TAIL


def powershell_stdin(request: Request) -> str:
    """The stdin of :data:`POWERSHELL_COMMAND` on a Windows probe host."""
    return request.body()


@dataclass(frozen=True, slots=True)
class Answer:
    """A probe host's answer: the method it used (or why it could not probe)
    and an outcome per endpoint it reported."""

    method: str | None
    unavailable: str
    outcomes: dict[Endpoint, Outcome]


_RESULT: dict[str, ProbeOutcome] = {
    "open": "open",
    "refused": "refused",
    "filtered": "filtered",
    "unreachable": "unreachable",
}
_LINE = re.compile(r"^r (\d+) (open|refused|filtered|unreachable|error) (-|[\d.]+) ?(.*)$")
MAX_REASON = 200


def read_answer(request: Request, stdout: str) -> Answer:
    """Read what the program printed; lines without this run's marker are noise."""
    method: str | None = None
    unavailable = ""
    outcomes: dict[Endpoint, Outcome] = {}
    prefix = request.marker + " "
    for raw in stdout.splitlines():
        if not raw.startswith(prefix):
            continue
        line = raw[len(prefix) :].strip()
        if line.startswith("method "):
            method = line.split(" ", 1)[1].strip()[:40]
        elif line.startswith("none"):
            unavailable = line[4:].strip()[:MAX_REASON] or "no probe tool on this host"
        elif match := _LINE.match(line):
            index, result, rtt, reason = match.groups()
            if int(index) >= len(request.endpoints):
                continue
            reason = reason.strip()[:MAX_REASON]
            if result == "error":
                outcomes[request.endpoints[int(index)]] = Outcome(
                    "not_probed", f"{method or '?'}: probe failed: {reason or 'unknown error'}"
                )
                continue
            outcomes[request.endpoints[int(index)]] = Outcome(
                _RESULT[result], f"{method or '?'}: {reason}", None if rtt == "-" else float(rtt)
            )
    return Answer(method, unavailable, outcomes)
