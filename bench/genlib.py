#!/usr/bin/env python3
"""Generated shared libraries of N functions, to measure how crashcatch's cost grows with a
library's size (issue 14): bench/genlib.py OUTDIR N [N...]

For each N writes OUTDIR/libgen-N.so (symbols, CFI, DWARF from `as -g`: one compilation unit
per 10,000 functions, as a real library has many units) and OUTDIR/libgen-N-nodwarf.so (the
same, `objcopy --strip-debug`: symbols and CFI only). Function i is

    gen_fI: movl (%rdi), %eax; addl $I, %eax; ret

so `ctypes.CDLL(lib).gen_fI(None)` faults inside it. Assembly rather than C: gcc takes minutes
for a million functions, `as` seconds. Each output is remade only when missing.
"""
import os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

PER_UNIT = 10_000


def write_unit(path, first, count):
    with open(path, "w") as f:
        f.write("\t.text\n")
        for i in range(first, first + count):
            f.write(f"\t.globl\tgen_f{i}\n\t.type\tgen_f{i}, @function\ngen_f{i}:\n\t.cfi_startproc\n"
                    f"\tmovl\t(%rdi), %eax\n\taddl\t${i}, %eax\n\tret\n\t.cfi_endproc\n\t.size\tgen_f{i}, .-gen_f{i}\n")
        f.write('\t.section\t.note.GNU-stack,"",@progbits\n')


def make(outdir, n):
    lib = os.path.join(outdir, f"libgen-{n}.so")
    nodwarf = os.path.join(outdir, f"libgen-{n}-nodwarf.so")
    if os.path.exists(lib) and os.path.exists(nodwarf):
        return lib, nodwarf
    work = os.path.join(outdir, f"gen-{n}")
    os.makedirs(work, exist_ok=True)
    units = []
    for u, first in enumerate(range(0, n, PER_UNIT)):
        s = os.path.join(work, f"u{u}.s")
        write_unit(s, first, min(PER_UNIT, n - first))
        units.append(s)

    def assemble(s):
        subprocess.run(["gcc", "-g", "-c", s, "-o", s[:-2] + ".o"], check=True)
        os.remove(s)
        return s[:-2] + ".o"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs = list(pool.map(assemble, units))
    subprocess.run(["gcc", "-shared", "-o", lib + ".tmp"] + objs, check=True)
    subprocess.run(["objcopy", "--strip-debug", lib + ".tmp", nodwarf], check=True)
    os.rename(lib + ".tmp", lib)
    for o in objs:
        os.remove(o)
    os.rmdir(work)
    return lib, nodwarf


if __name__ == "__main__":
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for n in map(int, sys.argv[2:]):
        for path in make(outdir, n):
            print(f"genlib: {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
