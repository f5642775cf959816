//! A short classification of the crash from the signal, the fault address and the stack.
