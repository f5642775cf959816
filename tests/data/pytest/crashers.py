"""Functions that crash the interpreter natively, for the suites in this folder. Lines the
tests look for carry a CRASH-LINE marker."""

import ctypes


def read_null():
    return ctypes.string_at(0)  # CRASH-LINE read_null


if __name__ == "__main__":
    read_null()  # CRASH-LINE main
