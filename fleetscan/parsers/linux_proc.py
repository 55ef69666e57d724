"""Listening sockets straight from ``/proc``, for hosts with neither ss nor netstat.

Minimal containers and appliances often ship neither iproute2 nor net-tools,
but every Linux has ``/proc/net/{tcp,tcp6,udp,udp6}``. :data:`PROC_SCRIPT` is
a POSIX ``sh`` script (the collector runs it on the host, as root when it can)
that prints those tables and a map socket inode → pid, comm, uid built by
walking ``/proc/PID/fd``. It needs only shell builtins, ``cat`` and ``ls``
(BusyBox is enough) and never fails when a process vanishes or its ``fd``
directory is unreadable: that process's sockets simply stay without owner.

Output, one marker line per section (markers start with ``@@``, which no
``/proc/net`` line does)::

    @@fleetscan-proc 1
    @@uid <real> <effective>          # of the shell that ran the script
    @@byteorder little|big             # else "@@arch <uname -m>" (kernels < 4.x)
    @@file tcp                         # then /proc/net/tcp verbatim
    ...
    @@missing udp6                     # the file could not be read
    @@sockets                          # then "<inode> <pid> <uid> <comm>" lines
    @@end

:func:`parse` reads that whole output. ``/proc/net`` quirks: addresses are
hex in host byte order per 32-bit word (little-endian on x86/arm: 127.0.0.1
is ``0100007F``, and each of the four words of an IPv6 address is reversed),
ports are big-endian hex. The byte order is the SCANNED host's (s390x or
big-endian ppc print ``7F000001``), so the script reports it. State ``0A`` is
TCP LISTEN; ``07`` (TCP_CLOSE) on a UDP socket means bound and unconnected.
The scope of a link-local address is not in ``/proc/net``.

Schema (see :mod:`fleetscan.parsers.base`): name (the comm, its lines joined
with a literal ``\\n``), pid and numeric uid as user, from the script's map.

Example::

    $ sh -c PROC_SCRIPT
    @@fleetscan-proc 1
    @@uid 0 0
    @@byteorder little
    @@file tcp
      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
       0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   70 0 30517 1
    @@sockets
    30517 812 70 postgres
    @@end

    [{"proto": "tcp", "family": 4, "address": "127.0.0.1", "port": 5432, "state": "LISTEN",
      "processes": [{"name": "postgres", "pid": 812, "user": "70"}]}]
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from fleetscan.addresses import Address, normalise_address
from fleetscan.model import ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import ParserInfo, is_number, make_listener, split_lines

info = ParserInfo(
    name="linux-proc",
    description="/proc/net/{tcp,tcp6,udp,udp6} and /proc/PID/fd, read by fleetscan's sh script",
    commands=("sh -c PROC_SCRIPT",),
)

# A comm may hold newlines and backslashes: its lines are joined with a
# literal `\n` (the name stays on its map line, escaped) and it is printed with
# `printf %s`, never `echo` (dash's echo would turn a `\n` in a name back into a
# line break and let a process forge map lines). `set -f` stops the unquoted
# `ls` output from being globbed; every redirection that can fail comes after
# 2>/dev/null so a vanished process prints nothing and costs nothing.
PROC_SCRIPT = r"""LC_ALL=C
export LC_ALL
echo '@@fleetscan-proc 1'
{ while read -r k r e _; do
    case $k in Uid:) echo "@@uid $r $e"; break;; esac
  done; } 2>/dev/null </proc/self/status
if IFS= read -r b 2>/dev/null </sys/kernel/cpu_byteorder; then
  echo "@@byteorder $b"
else
  echo "@@arch $(uname -m 2>/dev/null)"
fi
for f in tcp tcp6 udp udp6; do
  if [ -r "/proc/net/$f" ]; then
    echo "@@file $f"
    cat "/proc/net/$f" 2>/dev/null || echo "@@error $f"
  else
    echo "@@missing $f"
  fi
done
echo '@@sockets'
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  comm=
  uid=-
  { IFS= read -r comm && while IFS= read -r l; do comm="$comm\\n$l"; done; } \
    2>/dev/null <"$p/comm" || continue
  { while read -r k r _; do
      case $k in Uid:) uid=$r; break;; esac
    done; } 2>/dev/null <"$p/status"
  set -f
  for w in $(ls -l "$p/fd" 2>/dev/null); do
    case $w in
      'socket:['*']') w=${w#socket:\[}; printf '%s %s %s %s\n' "${w%\]}" "$pid" "$uid" "$comm";;
    esac
  done
  set +f
done
echo '@@end'
"""

_FILES: dict[str, tuple[str, int]] = {
    "tcp": ("tcp", 4),
    "tcp6": ("tcp", 6),
    "udp": ("udp", 4),
    "udp6": ("udp", 6),
}
#: `uname -m` of big-endian Linux ports (used only when cpu_byteorder is absent;
#: `mips` is either and is read as little-endian)
_BIG_ENDIAN_ARCHES = frozenset(
    {
        "s390",
        "s390x",
        "ppc",
        "ppc64",
        "sparc",
        "sparc64",
        "m68k",
        "parisc",
        "parisc64",
        "armeb",
        "aarch64_be",
        "sh4eb",
        "or1k",
        "microblaze",
        "xtensa",
    }
)
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


def _hex_address(text: str, family: int, order: Literal["little", "big"]) -> str:
    """Decode a /proc/net hex address: 32-bit words in the host's byte order."""
    raw = bytes.fromhex(text)
    if family == 4:
        if len(raw) != 4:
            raise ValueError("IPv4 address is not 4 bytes")
        return str(ipaddress.IPv4Address(int.from_bytes(raw, order)))
    if len(raw) != 16:
        raise ValueError("IPv6 address is not 16 bytes")
    words = (int.from_bytes(raw[i : i + 4], order) for i in range(0, 16, 4))
    packed = b"".join(w.to_bytes(4, "big") for w in words)
    return str(ipaddress.IPv6Address(packed))


class _Row:
    """A listening socket row, waiting for the owner map at the end of the output."""

    __slots__ = ("address", "inode", "line", "port", "raw", "tcp")

    def __init__(self, tcp: bool, address: Address, port: int, inode: str) -> None:
        self.tcp = tcp
        self.address = address
        self.port = port
        self.inode = inode
        self.raw = ""
        self.line = 0


def _read_row(line: str, proto: str, family: int, order: Literal["little", "big"]) -> _Row | None:
    """One /proc/net row → a listening row, or None for other sockets."""
    fields = line.split()
    if len(fields) < 10 or not fields[0].endswith(":"):
        raise ValueError("not a /proc/net socket row")
    local, state, inode = fields[1], fields[3], fields[9]
    addr_hex, sep, port_hex = local.partition(":")
    if not sep or not is_number(inode) or len(port_hex) != 4:
        raise ValueError("malformed local address or inode")
    port = int(port_hex, 16)
    host = _hex_address(addr_hex, family, order)
    if proto == "tcp":
        if state != _TCP_LISTEN:
            return None
    elif state != _UDP_UNCONNECTED or port == 0:
        return None  # connected, or not bound to a port
    return _Row(proto == "tcp", normalise_address(host, family), port, inode)


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse the output of :data:`PROC_SCRIPT`."""
    rows: list[_Row] = []
    unparsed: list[UnparsedLine] = []
    owners: dict[str, dict[Process, None]] = {}
    section: tuple[str, int] | str | None = None
    started = ended = False
    as_root = False
    order: Literal["little", "big"] = "little"

    for number, line in enumerate(split_lines(text), first_line):
        if line.startswith("@@"):
            word, _, arg = line[2:].partition(" ")
            if word == "fleetscan-proc":
                started = True
                section = None
            elif word == "uid":
                as_root = arg.split()[-1:] == ["0"]
            elif word == "byteorder" and arg in ("little", "big"):
                order = "big" if arg == "big" else "little"
            elif word == "arch":
                order = "big" if arg.strip() in _BIG_ENDIAN_ARCHES else "little"
            elif word == "file" and arg in _FILES:
                section = _FILES[arg]
            elif word in ("missing", "error") and arg in _FILES:
                section = None
            elif word == "sockets":
                section = "sockets"
            elif word == "end":
                section = None
                ended = True
            else:
                unparsed.append(UnparsedLine(number, line))
            continue
        if not line.strip():
            continue
        if section == "sockets":
            parts = line.split(" ", 3)
            if len(parts) < 3 or not is_number(parts[0]) or not is_number(parts[1]):
                unparsed.append(UnparsedLine(number, line))
                continue
            user = parts[2] if parts[2] != "-" else None
            name = parts[3] if len(parts) > 3 else None
            proc = Process(name=name, pid=int(parts[1]), user=user)
            owners.setdefault(parts[0], {})[proc] = None
            continue
        if isinstance(section, tuple):
            if line.lstrip().startswith("sl "):
                continue  # the table's own header
            try:
                row = _read_row(line, section[0], section[1], order)
            except ValueError:
                unparsed.append(UnparsedLine(number, line))
                continue
            if row is not None:
                row.raw = line
                row.line = number
                rows.append(row)
            continue
        unparsed.append(UnparsedLine(number, line))

    listeners = tuple(
        make_listener(
            tcp=r.tcp,
            address=r.address,
            port=r.port,
            processes=owners.get(r.inode, ()),
            raw=r.raw,
            line=r.line,
        )
        for r in rows
    )
    # Without root, other users' fd directories are unreadable: their sockets
    # have no owner, and we cannot tell them from kernel sockets.
    complete = started and ended
    owners_known = complete and (as_root or all(x.processes for x in listeners))
    return ParseResult(
        parser=info.name, listeners=listeners, unparsed=tuple(unparsed), owners_known=owners_known
    )


def detect(text: str) -> float:
    """Confidence that ``text`` is :data:`PROC_SCRIPT` output."""
    head = text[:4096]
    if "@@fleetscan-proc" in head:
        return 1.0
    if "local_address rem_address" in head:
        return 0.3  # a bare /proc/net table: ours, but without the markers
    return 0.0
