"""The BPF layer: assembler (long jumps), loader checks, interpreter; and the size limits."""

from __future__ import annotations

import pytest

from reference.errors import ConfigError
from reference.oci import seccomp_bpf as bpf
from reference.oci.seccomp import compile_seccomp
from reference.oci.seccomp_tables import AUDIT_ARCH_X86_64, syscall_numbers
from tests.reference.oci.test_oci_seccomp import (
    ALLOW,
    arg,
    compiled,
    decide,
    errno_ret,
    profile,
    rule,
)


def insn(code: int, jt: int = 0, jf: int = 0, k: int = 0) -> bytes:
    return bpf.INSN.pack(code, jt, jf, k)


def program(*insns: bytes) -> bytes:
    return b"".join(insns)


JA = bpf.JMP | bpf.JA


def test_short_jumps_are_plain_offsets() -> None:
    asm = bpf.Assembler()
    yes, no = asm.label(), asm.label()
    asm.load(bpf.OFF_NR)
    asm.jump(bpf.JEQ_K, 7, yes, no)
    asm.place(no)
    asm.ret(1)
    asm.place(yes)
    asm.ret(2)
    code = asm.assemble()
    assert bpf.decode(code)[1] == (bpf.JEQ_K, 1, 0, 7)
    assert bpf.run(code, bpf.seccomp_data(7, 0)) == 2
    assert bpf.run(code, bpf.seccomp_data(8, 0)) == 1


@pytest.mark.parametrize("far", ["jt", "jf", "both"])
def test_far_targets_go_through_ja(far: str) -> None:
    asm = bpf.Assembler()
    near, distant = asm.label(), asm.label()
    jt, jf = (distant, near) if far == "jt" else (near, distant) if far == "jf" else (distant,) * 2
    asm.load(bpf.OFF_NR)
    asm.jump(bpf.JEQ_K, 7, jt, jf)
    asm.place(near)
    asm.ret(1)
    for _ in range(300):
        asm.ret(3)  # padding
    asm.place(distant)
    asm.ret(2)
    code = asm.assemble()
    bpf.check(code)
    decoded = bpf.decode(code)
    assert sum(c == JA for c, *_ in decoded) == (2 if far == "both" else 1)
    assert all(max(jt, jf) <= 255 for _, jt, jf, _ in decoded)
    seven, eight = bpf.seccomp_data(7, 0), bpf.seccomp_data(8, 0)
    assert (bpf.run(code, seven), bpf.run(code, eight)) == {
        "jt": (2, 1), "jf": (1, 2), "both": (2, 2)
    }[far]  # fmt: skip


def test_widening_one_jump_can_push_another_out_of_range() -> None:
    asm = bpf.Assembler()
    target = asm.label()
    asm.load(bpf.OFF_NR)
    for n in range(40):  # 40 jumps to one target just in range: widening cascades
        asm.jump(bpf.JEQ_K, n, target, None)
    for _ in range(215):
        asm.ret(1)
    asm.place(target)
    asm.ret(2)
    code = asm.assemble()
    bpf.check(code)
    for n in range(40):
        assert bpf.run(code, bpf.seccomp_data(n, 0)) == 2
    assert bpf.run(code, bpf.seccomp_data(40, 0)) == 1


def test_backward_jump_is_a_bug() -> None:
    asm = bpf.Assembler()
    back = asm.label()
    asm.place(back)
    asm.load(0)
    asm.jump(bpf.JEQ_K, 0, back, None)
    asm.ret(0)
    with pytest.raises(AssertionError, match="backward"):
        asm.assemble()


@pytest.mark.parametrize(
    ("code", "match"),
    [
        (b"", "0 instructions"),
        (insn(bpf.RET_K) * 4097, "4097 instructions"),
        (program(insn(bpf.LD_ABS, k=0)), "not a return"),
        (program(insn(bpf.LD_ABS, k=2), insn(bpf.RET_K)), "offset 2"),
        (program(insn(bpf.LD_ABS, k=64), insn(bpf.RET_K)), "offset 64"),
        (program(insn(bpf.JEQ_K, 1, 0), insn(bpf.RET_K)), "leaves the program"),
        (program(insn(JA, k=1), insn(bpf.RET_K)), "leaves the program"),
        (program(insn(bpf.ALU | bpf.DIV | bpf.K, k=0), insn(bpf.RET_K)), "division"),
        (program(insn(bpf.LD | bpf.W | bpf.MEM, k=16), insn(bpf.RET_K)), "scratch"),
        (program(insn(bpf.LD | bpf.W | 0x40, k=0), insn(bpf.RET_K)), "not allowed"),  # BPF_IND
    ],
)
def test_check_refuses_what_the_kernel_refuses(code: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bpf.check(code)


def test_interpreter_covers_classic_bpf() -> None:
    alu = bpf.ALU
    code = program(
        insn(bpf.LD_ABS, k=bpf.OFF_ARGS),  # A = args[0] low word (6)
        insn(bpf.MISC | bpf.TAX),  # X = 6
        insn(bpf.LD | bpf.IMM, k=100),  # A = 100
        insn(alu | bpf.SUB | bpf.X),  # 94
        insn(alu | bpf.MUL | bpf.K, k=2),  # 188
        insn(alu | bpf.DIV | bpf.K, k=3),  # 62
        insn(alu | bpf.MOD | bpf.K, k=50),  # 12
        insn(alu | bpf.LSH | bpf.K, k=4),  # 192
        insn(alu | bpf.RSH | bpf.K, k=1),  # 96
        insn(alu | bpf.OR | bpf.K, k=1),  # 97
        insn(alu | bpf.XOR | bpf.K, k=3),  # 98
        insn(alu | bpf.ADD | bpf.X),  # 104
        insn(bpf.ST, k=3),  # M[3] = 104
        insn(bpf.LDX | bpf.W | bpf.MEM, k=3),  # X = 104
        insn(bpf.LD | bpf.W | bpf.LEN),  # A = 64
        insn(bpf.JMP | bpf.JGT | bpf.X, 1, 0),  # 64 > 104? no
        insn(bpf.MISC | bpf.TXA),  # A = 104
        insn(bpf.JSET_K, 0, 1, k=8),  # 104 & 8 -> taken
        insn(bpf.RET | 0x10),  # ret A
        insn(bpf.RET_K, k=0),
    )
    bpf.check(code)
    assert bpf.run(code, bpf.seccomp_data(0, 0, (6,))) == 104
    neg = program(insn(bpf.LD | bpf.IMM, k=1), insn(alu | bpf.NEG), insn(bpf.RET | 0x10))
    assert bpf.run(neg, bpf.seccomp_data(0, 0)) == 0xFFFFFFFF
    assert "ret 0x" in bpf.disassemble(code)


def test_seccomp_data_layout() -> None:
    data = bpf.seccomp_data(0xFFFFFFFF, AUDIT_ARCH_X86_64, (1, 2**64 - 1), ip=0x1234)
    assert len(data) == bpf.DATA_SIZE
    load = program(insn(bpf.LD_ABS, k=bpf.OFF_NR), insn(bpf.RET | 0x10))
    assert bpf.run(load, data) == 0xFFFFFFFF  # nr -1 reads as 0xffffffff
    hi_arg1 = program(insn(bpf.LD_ABS, k=bpf.OFF_ARGS + 12), insn(bpf.RET | 0x10))
    assert bpf.run(hi_arg1, data) == 0xFFFFFFFF


def test_large_profile_needs_long_jumps_and_stays_right() -> None:
    names = sorted(syscall_numbers("SCMP_ARCH_X86_64"))
    # A distinct block per syscall (distinct errno): the search tree's jumps reach far.
    rules = [rule(n, "SCMP_ACT_ERRNO", arg(1, "GE", i), errno=i + 1) for i, n in enumerate(names)]
    code = compiled(profile("SCMP_ACT_ALLOW", *rules))
    decoded = bpf.decode(code)
    assert len(decoded) > 2000
    assert any(c == JA for c, *_ in decoded)
    for i, name in enumerate(names):
        assert decide(code, name, 0, i) == errno_ret(i + 1), name
        if i:
            assert decide(code, name, 0, i - 1) == ALLOW, name


def test_programs_over_the_kernel_limit_are_refused() -> None:
    names = sorted(syscall_numbers("SCMP_ARCH_X86_64"))
    conds = [arg(i, "GT", 2**40 + i) for i in range(3)]
    rules = [rule(n, "SCMP_ACT_ERRNO", *conds, errno=i) for i, n in enumerate(names)]
    with pytest.raises(ConfigError, match=r"over the kernel's limit of 4096") as raised:
        compile_seccomp(profile("SCMP_ACT_ALLOW", *rules), arch="x86_64")
    assert raised.value.obj == "linux.seccomp.syscalls"
