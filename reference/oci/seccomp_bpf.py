"""Classic BPF as seccomp uses it: an assembler with long jumps, a checker, and an interpreter.

The assembler takes symbolic jumps and lays them out. A conditional jump's targets are 8-bit
forward offsets, so a target more than 255 instructions away is reached through BPF_JA (32-bit
offset) trampolines placed right after the jump; layout is repeated until no jump needs widening
(widening only ever moves targets further away, so this terminates).

The checker applies the rules the kernel's loader does (bpf_check_classic plus
seccomp_check_filter) that a compiler bug could break. The interpreter runs a program on a
synthetic `struct seccomp_data`, so filters are tested without installing them.
"""

from __future__ import annotations

import struct
import sys

# struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}, in the host's byte order and layout.
INSN = struct.Struct("=HBBI")

# Instruction classes and fields (linux/bpf_common.h).
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, ABS, MEM, LEN, IMM = 0x00, 0x20, 0x60, 0x80, 0x00
K, X = 0x00, 0x08
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0,
)  # fmt: skip
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
TAX, TXA = 0x00, 0x80

LD_ABS = LD | W | ABS  # A = seccomp_data[k:k+4]
AND_K = ALU | AND | K
JEQ_K, JGT_K, JGE_K, JSET_K = (JMP | op | K for op in (JEQ, JGT, JGE, JSET))
RET_K = RET | K

MAXINSNS = 4096
MAX_JUMP = 255

# SECCOMP_RET_* (linux/seccomp.h): the action in the high 16 bits, data (errno) in the low 16.
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_DATA = 0x0000FFFF

# struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6];}
DATA_SIZE = 64
OFF_NR, OFF_ARCH, OFF_IP, OFF_ARGS = 0, 4, 8, 16
_DATA = struct.Struct("=iIQ6Q")


# Assembler items: (kind, code or label, k, jt, jf); a JA keeps its target label in jt.
_LABEL, _OP, _JA, _JUMP = range(4)
_Item = tuple[int, int, int, int | None, int | None]


class Assembler:
    """A program under construction. Labels are ints from `label()`; `None` means "next"."""

    def __init__(self) -> None:
        self._items: list[_Item] = []
        self._labels = 0

    def label(self) -> int:
        self._labels += 1
        return self._labels - 1

    def place(self, label: int) -> None:
        self._items.append((_LABEL, label, 0, None, None))

    def op(self, code: int, k: int = 0) -> None:
        self._items.append((_OP, code, k, None, None))

    def load(self, offset: int) -> None:
        self.op(LD_ABS, offset)

    def ret(self, value: int) -> None:
        self.op(RET_K, value)

    def jump(self, code: int, k: int, jt: int | None, jf: int | None) -> None:
        self._items.append((_JUMP, code, k, jt, jf))

    def ja(self, label: int) -> None:
        self._items.append((_JA, JMP | JA, 0, label, None))

    def assemble(self) -> bytes:
        items = self._items
        # Size of each item: labels 0, conditional jumps 1 or, with trampolines, 2 or 3.
        sizes = [0 if item[0] == _LABEL else 1 for item in items]
        while True:
            where, at = self._layout(sizes)
            grown = False
            for i, (kind, _, _, jt, jf) in enumerate(items):
                if kind != _JUMP:
                    continue
                base, after = where[i] + 1, where[i] + sizes[i]
                need = (
                    1
                    + (_at(jt, at, after) - base > MAX_JUMP)
                    + (_at(jf, at, after) - base > MAX_JUMP)
                )
                if need > sizes[i]:
                    sizes[i], grown = need, True
            if not grown:
                break
        out: list[bytes] = []
        pack = INSN.pack
        for i, item in enumerate(items):
            kind = item[0]
            if kind == _OP:
                out.append(pack(item[1], 0, 0, item[2]))
            elif kind == _JA:
                out.append(pack(JMP | JA, 0, 0, _forward(_at(item[3], at, 0) - where[i] - 1)))
            elif kind == _JUMP:
                out.extend(_emit_jump(item, where[i], sizes[i], at))
        return b"".join(out)

    def _layout(self, sizes: list[int]) -> tuple[list[int], dict[int, int]]:
        where: list[int] = []
        at: dict[int, int] = {}
        pos = 0
        for item, size in zip(self._items, sizes, strict=True):
            where.append(pos)
            if item[0] == _LABEL:
                at[item[1]] = pos
            pos += size
        return where, at


def _at(label: int | None, at: dict[int, int], after: int) -> int:
    return after if label is None else at[label]


def _forward(offset: int) -> int:
    if offset < 0:
        raise AssertionError(f"backward jump by {offset} (compiler bug)")
    return offset


def _emit_jump(item: _Item, pos: int, size: int, at: dict[int, int]) -> list[bytes]:
    _, code, k, jt, jf = item
    after = pos + size
    t, f = _at(jt, at, after), _at(jf, at, after)
    pack, base = INSN.pack, pos + 1
    if size == 1:
        return [pack(code, _forward(t - base), _forward(f - base), k)]
    if size == 3:  # both far: jt lands on the first JA, jf on the second
        return [
            pack(code, 0, 1, k),
            pack(JMP | JA, 0, 0, _forward(t - pos - 2)),
            pack(JMP | JA, 0, 0, _forward(f - pos - 3)),
        ]
    if t - base > MAX_JUMP:  # jt lands on the JA right after the jump; jf skips it
        return [pack(code, 0, _forward(f - base), k), pack(JMP | JA, 0, 0, _forward(t - pos - 2))]
    return [pack(code, _forward(t - base), 0, k), pack(JMP | JA, 0, 0, _forward(f - pos - 2))]


def seccomp_data(nr: int, arch: int, args: tuple[int, ...] = (), ip: int = 0) -> bytes:
    """A `struct seccomp_data` as the kernel fills it (args zero-padded to six)."""
    padded = tuple(args) + (0,) * (6 - len(args))
    return _DATA.pack(nr - (1 << 32) if nr >= 1 << 31 else nr, arch, ip, *padded)


_DECODED: dict[bytes, tuple[tuple[int, int, int, int], ...]] = {}


def decode(program: bytes) -> tuple[tuple[int, int, int, int], ...]:
    # Memoized (the last 16 programs): tests run one program on many inputs. By hand rather
    # than functools.lru_cache: functools imports collections, ~3 ms of every `create`.
    insns = _DECODED.get(program)
    if insns is None:
        if len(program) % INSN.size:
            raise ValueError(f"program length {len(program)} is not a multiple of {INSN.size}")
        insns = tuple(INSN.iter_unpack(program))
        if len(_DECODED) >= 16:
            del _DECODED[next(iter(_DECODED))]
        _DECODED[program] = insns
    return insns


def check(program: bytes) -> None:
    """Raise ValueError for what the kernel would refuse to load (EINVAL)."""
    insns = decode(program)
    n = len(insns)
    if not 0 < n <= MAXINSNS:
        raise ValueError(f"{n} instructions, not in [1, {MAXINSNS}]")
    for pc, (code, jt, jf, k) in enumerate(insns):
        cls = code & 0x07
        if code == LD_ABS and (k % 4 or k >= DATA_SIZE):
            raise ValueError(f"insn {pc}: load of seccomp_data offset {k}")
        if cls in (LD, LDX) and code & 0xE0 not in (ABS, MEM, LEN, IMM):
            raise ValueError(f"insn {pc}: load mode {code:#x} not allowed in seccomp")
        if cls == JMP:
            if code & 0xF0 == JA:
                if k >= n - pc - 1:
                    raise ValueError(f"insn {pc}: ja {k} leaves the program")
            elif max(jt, jf) >= n - pc - 1:
                raise ValueError(f"insn {pc}: jump ({jt}, {jf}) leaves the program")
        if cls == ALU and code & 0xF0 in (DIV, MOD) and not code & X and k == 0:
            raise ValueError(f"insn {pc}: division by constant zero")
        if code & 0xE0 == MEM and cls in (LD, LDX, ST, STX) and k >= 16:
            raise ValueError(f"insn {pc}: scratch slot {k}")
    if insns[-1][0] & 0x07 != RET:
        raise ValueError("the last instruction is not a return")


def run(program: bytes, data: bytes) -> int:
    """Run `program` on `data` (a seccomp_data) and return what it returns (SECCOMP_RET_*)."""
    insns = decode(program)
    a = x = 0
    mem = [0] * 16
    pc = 0
    mask = 0xFFFFFFFF
    while True:
        if pc >= len(insns):
            raise ValueError("ran off the end of the program")
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == RET:
            return a if code & 0x18 == 0x10 else k  # BPF_A or BPF_K
        if cls in (LD, LDX):
            mode = code & 0xE0
            if mode == ABS:
                if k % 4 or k + 4 > len(data):
                    raise ValueError(f"load of seccomp_data offset {k}")
                value = int.from_bytes(data[k : k + 4], sys.byteorder)
            elif mode == LEN:
                value = len(data)
            elif mode == MEM:
                value = mem[k]
            else:
                value = k
            if cls == LD:
                a = value
            else:
                x = value
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        elif cls == ALU:
            a = _alu(code, a, x if code & X else k) & mask
        elif cls == JMP:
            op = code & 0xF0
            if op == JA:
                pc += k
                continue
            src = x if code & X else k
            taken = (
                a == src if op == JEQ else a > src if op == JGT else a >= src if op == JGE
                else bool(a & src)
            )  # fmt: skip
            pc += jt if taken else jf
        else:  # MISC
            if code & 0xF8 == TAX:
                x = a
            else:
                a = x


def _alu(code: int, a: int, src: int) -> int:
    op = code & 0xF0
    if op == ADD:
        return a + src
    if op == SUB:
        return a - src
    if op == MUL:
        return a * src
    if op in (DIV, MOD):
        if src == 0:
            return 0  # the kernel's classic BPF returns 0 for a run-time division by zero
        return a // src if op == DIV else a % src
    if op == OR:
        return a | src
    if op == AND:
        return a & src
    if op == LSH:
        return a << (src & 31)
    if op == RSH:
        return a >> (src & 31)
    if op == NEG:
        return -a
    if op == XOR:
        return a ^ src
    raise ValueError(f"unknown ALU operation {code:#x}")


def disassemble(program: bytes) -> str:
    """One line per instruction, for debugging and error messages."""
    names = {JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"}
    lines = []
    for pc, (code, jt, jf, k) in enumerate(decode(program)):
        cls = code & 0x07
        if code == LD_ABS:
            text = f"ld [{k}]"
        elif cls == RET:
            text = f"ret {k:#010x}"
        elif cls == JMP and code & 0xF0 == JA:
            text = f"ja {pc + 1 + k}"
        elif cls == JMP:
            text = f"{names.get(code & 0xF0, hex(code))} {k:#x} ? {pc + 1 + jt} : {pc + 1 + jf}"
        elif code == AND_K:
            text = f"and {k:#x}"
        else:
            text = f"code={code:#x} jt={jt} jf={jf} k={k:#x}"
        lines.append(f"{pc:4d}: {text}")
    return "\n".join(lines)
